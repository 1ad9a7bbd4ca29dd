"""The HTML report: a run directory built by the real pipeline code, rendered, checked as text and in Chromium."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from critiq.errors import CritiqError
from critiq.report import render_html
from critiq.report.scores import shorten
from critiq.stats import interval_text, pct
from tests.report.pipeline_run import HOSTILE, nothing_passed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _page(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def _row_of(page: str, marker: str) -> str:
    """The table row holding ``marker``."""
    found = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(marker)}.*?</tr>", page, re.DOTALL)
    assert found, marker
    return found.group(0)


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_report_has_every_section(run_dir: Path) -> None:
    page = _page(run_dir)
    criteria = json.loads((run_dir / "mine" / "criteria.json").read_text())["criteria"]
    for anchor in ("criteria", "votes", "bias", "retrieval", "annotate", "usage", "scorer", "scores", "selection"):
        assert f'id="{anchor}"' in page, anchor
    assert "<table><thead><tr><th>criterion</th><th>accuracy</th><th>coverage</th><th>n</th><th>95% interval" in page
    for criterion in criteria:
        assert f"<strong>{criterion['name']}</strong>" in page
        row = _row_of(page, f"<strong>{criterion['name']}</strong>")
        stats = criterion["stats"]
        numbers = [pct(stats["accuracy"]), pct(stats["coverage"]), f"{stats['n']:,}", interval_text(stats["interval"])]
        numbers.append(pct(stats["decided_accuracy"]))
        assert re.findall(r'<td class="num">([^<]*)</td>', row) == numbers, criterion["name"]
        assert f"<td>{criterion['origin']}</td>" in row and "· final</strong>" in row
    assert "weighted vote" in page and "majority vote" in page
    assert '<li value="0">' in page and '<li value="2">' in page  # each line's versions, by iteration
    assert "top by score" in page and "bottom by score" in page
    assert page.count("<img ") == 2 and page.count('src="data:image/png;base64,') == 2
    for name in ("accuracy.png", "scores.png"):
        assert (run_dir / "figures" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    assert "Models recorded in this run: openai/scripted." in page  # criteria.json records the flow's models


def test_untrusted_text_is_escaped(run_dir: Path) -> None:
    page = _page(run_dir)
    assert "<script" not in page.lower() and not re.search(r"<[^>]*onerror", page)
    # the task line, in the flow settings (autoescape writes a double quote as &#34;, as html.escape writes &quot;)
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page


def test_example_texts_are_escaped_and_shortened() -> None:
    from critiq.report.render import environment
    from critiq.report.scores import Shown, shorten

    text = HOSTILE + "\n" + "line\n" * 100
    examples_block = environment().get_template("macros.html.j2").module.examples  # type: ignore[attr-defined]
    block = str(examples_block("top", [Shown(HOSTILE, 1.5, shorten(text))]))
    assert "<script" not in block and "<img" not in block and block.count("&lt;script&gt;") == 2
    assert "more characters)" in block and block.count("line") < 30


def test_report_numbers_match_the_run(run_dir: Path) -> None:
    page = _page(run_dir)
    manifest = json.loads((run_dir / "scorer" / "scorer.json").read_text())
    accuracy = manifest["fit_report"]["accuracy"]
    low, high = manifest["fit_report"]["interval"]
    assert f"{accuracy:.1%}" in page and f"[{low:.2f}, {high:.2f}]" in page
    usage = json.loads((run_dir / "mine" / "usage.json").read_text())
    assert f'<td>mine (CritiQ Flow)</td><td class="num">{usage["requests"]:,}</td>' in page
    selected = [json.loads(line) for line in (run_dir / "selected.jsonl").read_text().splitlines()]
    best = max(selected, key=lambda r: r["score"])
    assert f"{best['id']} · score {best['score']:.4g}" in page
    annotated = _json(run_dir / "annotate.json")
    assert f'<td>annotate</td><td class="num">{annotated["usage"]["requests"]:,}</td>' in page
    summary = annotated["summary"]
    assert f"<p>{summary['written']} pairs labelled, {summary['skipped']} skipped as already done" in page
    labels = [json.loads(line)["preferred"] for line in (run_dir / "labeled.jsonl").read_text().splitlines()]
    assert f"labeled.jsonl: a: {labels.count('a')}, b: {labels.count('b')}." in page
    flow = _json(run_dir / "mine" / "criteria.json")
    vote = _row_of(page, "<td>majority vote</td>")
    assert f'<td class="num">{pct(flow["vote"]["accuracy"])}</td>' in vote
    assert f'<td class="num">{interval_text(flow["vote"]["interval"])}</td>' in vote
    assert f'<td class="num">{pct(flow["vote"]["decided_accuracy"])}</td>' in vote
    assert f'<td class="num">{interval_text(flow["vote"]["decided_interval"])}</td>' in vote
    assert flow["vote"]["accuracy"] == flow["vote"]["correct"] / flow["vote"]["n"]  # a tie counts as wrong
    bias = flow["position_bias"]
    flips = _row_of(page, "verdict flips when the order")
    assert pct(bias["flip_rate"]) in flips and f"{bias['cells_in_both_orders']} cells judged in both orders" in flips
    assert f"{bias['answers']} answers" in _row_of(page, "first-shown text picked")
    retrieval = _json(run_dir / "mine" / "state.json")["retrieval"]
    assert f"{len(retrieval['candidates'])} of {retrieval['knowledge_base_size']} knowledge-base criteria" in page
    assert f"Kept: {', '.join(retrieval['kept'])}." in page
    candidates = page[page.index('id="retrieval"') :]
    for name in retrieval["candidates"]:
        kept = "kept" if name in retrieval["kept"] else ""
        assert f'<td class="num">{pct(retrieval["accuracy"][name])}</td><td>{kept}</td>' in _row_of(
            candidates, f"<td>{name}</td>"
        )


def test_position_bias_comes_from_criteria_json(run_dir: Path, tmp_path: Path) -> None:
    """The report shows what the flow measured and wrote, without re-deriving it from the judgments."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir / "mine", copy)
    (copy / "judgments.jsonl").unlink()
    document = _json(copy / "criteria.json")
    bias = {"flip_rate": 0.125, "cells_in_both_orders": 8, "first_position_rate": 0.6, "answers": 7}
    document["position_bias"] = bias
    (copy / "criteria.json").write_text(json.dumps(document))
    page = render_html(copy).read_text(encoding="utf-8")
    assert '<td class="num">12.5%</td><td>8 cells judged in both orders</td>' in page
    assert '<td class="num">60.0%</td><td>7 answers</td>' in page
    document["position_bias"] = {"flip_rate": None, "cells_in_both_orders": 0, "first_position_rate": 0.5, "answers": 4}
    (copy / "criteria.json").write_text(json.dumps(document))
    page = render_html(copy).read_text(encoding="utf-8")
    assert "<td>0 cells judged in both orders (measured only with swap=both)</td>" in page
    del document["position_bias"]
    (copy / "criteria.json").write_text(json.dumps(document))
    page = render_html(copy).read_text(encoding="utf-8")
    assert 'id="bias"' not in page and 'id="votes"' in page


def test_embedded_model_banner(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert "used the embedded model" not in _page(copy)
    render_html(copy, models=["openai/smollm2-135m-instruct"])
    assert "used the embedded model" in _page(copy)
    (copy / "run.json").write_text(json.dumps({"settings": {"worker_model": "openai/gpt-4o-mini"}}))
    render_html(copy)
    assert "Models recorded in this run: openai/scripted, openai/gpt-4o-mini." in _page(copy)
    criteria_file = copy / "mine" / "criteria.json"
    document = json.loads(criteria_file.read_text())
    del document["models"]
    criteria_file.write_text(json.dumps(document))
    state_file = copy / "mine" / "state.json"  # the resume identity names the models too
    state = json.loads(state_file.read_text())
    state["identity"] = {k: v for k, v in state["identity"].items() if not k.endswith("_model")}
    state_file.write_text(json.dumps(state))
    annotation = json.loads((copy / "annotate.json").read_text())  # so does annotate.json
    (copy / "annotate.json").write_text(json.dumps({k: v for k, v in annotation.items() if k != "model"}))
    (copy / "run.json").unlink()
    render_html(copy)
    assert "does not record which model" in _page(copy)  # neutral note when nothing names the model


def test_bare_flow_run_dir(run_dir: Path) -> None:
    out = render_html(run_dir / "mine")
    page = out.read_text(encoding="utf-8")
    assert out == run_dir / "mine" / "report.html"
    assert 'id="criteria"' in page and 'id="votes"' in page and 'id="usage"' in page
    assert 'id="scorer"' not in page and 'id="selection"' not in page
    assert page.count("<img ") == 1


def test_examples_from_the_scored_corpus_without_a_selection(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("selected.jsonl", "selection.json", "mine"))
    page = render_html(copy).read_text(encoding="utf-8")
    assert "of the scored corpus" in page and 'id="criteria"' not in page
    assert page.count("<pre>") == 10


def test_unreadable_part_is_named_and_the_rest_renders(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "annotate.json").write_text("{not json")
    page = render_html(copy).read_text(encoding="utf-8")
    assert "Could not read" in page and "annotate.json" in page and 'id="criteria"' in page


def test_nothing_to_report(tmp_path: Path) -> None:
    with pytest.raises(CritiqError, match="nothing to report"):
        render_html(tmp_path)
    with pytest.raises(CritiqError, match="no such run directory"):
        render_html(tmp_path / "absent")


def _png_is_blank(data: bytes) -> bool:
    """Whether an image has a single colour (Pillow comes with matplotlib)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return all(low == high for low, high in image.convert("RGB").getextrema())


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_report_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
    )
    with sync_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            dialogs: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto((run_dir / "report.html").as_uri(), wait_until="load")
            state = page.evaluate(
                """() => ({
                    title: document.title,
                    headers: Array.from(document.querySelectorAll('#criteria + table th')).map(th => th.textContent),
                    criteria: document.querySelectorAll('#criteria + table tbody tr').length,
                    images: Array.from(document.images).map(img => [img.complete, img.naturalWidth, img.alt]),
                    scripts: document.querySelectorAll('script, [onerror]').length,
                    pre: Array.from(document.querySelectorAll('pre')).map(p => p.textContent),
                    rows: Array.from(document.querySelectorAll('#criteria + table tbody tr'))
                        .map(tr => Array.from(tr.cells).map(td => td.textContent)),
                    csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]').content,
                    bias: Array.from(document.querySelectorAll('#bias + table td')).map(td => td.textContent),
                    first: document.querySelector('main').firstElementChild.tagName,
                    labels: Array.from(document.querySelectorAll('#labels ~ .grid tr'))
                        .map(tr => Array.from(tr.cells).map(td => td.textContent)),
                    ablation: Array.from(document.querySelectorAll('#ablation ~ table'))[0].tBodies[0].rows.length,
                    earlyStop: document.querySelector('#early-stop').textContent,
                    length: Array.from(document.querySelectorAll('#length + table td')).map(td => td.textContent),
                    evidence: document.querySelector('#evidence + p').textContent,
                    reflection: Array.from(document.querySelectorAll('#versions tbody tr'))
                        .map(tr => tr.cells[tr.cells.length - 1].textContent).filter(text => text),
                    failedHeader: document.querySelectorAll('#criteria + table th')[7].textContent,
                })"""
            )
            shot = page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            page.goto(nothing_passed(run_dir, tmp_path / "failed").as_uri(), wait_until="load")
            failed = page.evaluate(
                """() => ({
                    first: document.querySelector('main').firstElementChild.id,
                    verdict: document.querySelector('#verdict').textContent,
                    heading: document.querySelector('#criteria').textContent,
                    unjudged: document.querySelector('#unjudged').textContent,
                })"""
            )
        finally:
            context.close()
    criteria = json.loads((run_dir / "mine" / "criteria.json").read_text())["criteria"]
    assert state["title"].startswith("critiq report")
    assert state["headers"][:5] == ["criterion", "accuracy", "coverage", "n", "95% interval"]
    assert state["criteria"] == len(criteria)
    assert len(state["images"]) == 2
    assert all(complete and width > 0 for complete, width, _ in state["images"]), state["images"]
    assert state["scripts"] == 0 and not dialogs and not errors
    assert len(state["pre"]) == 10
    assert not _png_is_blank(shot)
    assert state["csp"] == CSP
    for cells, criterion in zip(state["rows"], criteria, strict=True):
        assert cells[0] == criterion["name"] + criterion["description"]  # the <br> between them has no text
        assert cells[1] == pct(criterion["stats"]["accuracy"]) and cells[6] == criterion["origin"]
        assert cells[5] == pct(criterion["stats"]["decided_accuracy"])
    selected = [json.loads(line) for line in (run_dir / "selected.jsonl").read_text().splitlines()]
    ranked = sorted(selected, key=lambda r: r["score"])
    assert state["pre"][0] == shorten(ranked[-1]["text"]) and state["pre"][5] == shorten(ranked[0]["text"])
    bias = json.loads((run_dir / "mine" / "criteria.json").read_text())["position_bias"]
    assert state["bias"][1] == pct(bias["flip_rate"]) and state["bias"][4] == pct(bias["first_position_rate"])
    assert state["first"] == "H1"  # criteria passed: no verdict line above the title
    annotators = {row["metadata"]["annotator"] for row in map(json.loads, (run_dir / "pairs.jsonl").open())}
    assert {cells[0] for cells in state["labels"] if len(cells) == 2} >= annotators | {"random", "scorer unsure"}
    assert state["ablation"] == len(_json(run_dir / "ablation" / "ablation.json")["rows"])
    summary = _json(run_dir / "annotate.json")["summary"]
    assert " ".join(state["earlyStop"].split()).startswith(f"Early stop: {summary['asked']} of ")
    fit = _json(run_dir / "scorer" / "scorer.json")["fit_report"]
    assert float(state["length"][1]) == float(f"{fit['length_spearman']:.4g}") and state["length"][-2] == "off"
    notes = _json(run_dir / "mine" / "criteria.json")["evidence"]["notes"]
    assert " ".join(state["evidence"].split()).startswith(f"All {notes} human-evidence notes reached")
    wrong = [r for r in _json(run_dir / "mine" / "state.json")["history"] if r["wrong"] is not None]
    assert sorted(state["reflection"]) == sorted(
        f"critiqued {r['critiqued']} of {r['wrong']} wrong cases" for r in wrong
    )
    assert state["failedHeader"] == "failed judgments"
    assert failed["first"] == "verdict" and failed["verdict"].startswith("No criterion reached decided accuracy 100.0%")
    assert failed["heading"] == "Best criteria below the threshold (2, not final)"
    assert " ".join(failed["unjudged"].split()).endswith("kb_silent.")


def test_odd_values_in_hand_edited_files_do_not_break_the_page(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "criteria.json").write_text(
        json.dumps(
            {
                "criteria": [{"name": "x", "description": "y", "stats": "broken", "history": "no"}, "not a criterion"],
                "vote": {"accuracy": "high", "interval": [0.1]},
                "thresholds": None,
            }
        )
    )
    (mine / "state.json").write_text(json.dumps({"history": [{"slot": "a"}, 3], "retrieval": {"kept": "x"}}))
    (tmp_path / "selected.jsonl").write_text('[1, 2]\n{"score": "high"}\n{"score": 1.0, "text": "<b>kept</b>"}\n')
    page = render_html(tmp_path).read_text(encoding="utf-8")
    assert "<strong>x</strong>" in page and "&lt;b&gt;kept&lt;/b&gt;" in page and "<b>kept" not in page
    problems = page[page.index("Could not read") :]
    assert "mine/criteria.json: ignored criteria[1]" in problems and "mine/state.json: ignored history[0]" in problems
    assert "ignored vote: accuracy:" in problems  # the vote had a word for its accuracy
