"""The HTML report: a run directory built by the real pipeline code, rendered, checked as text and in Chromium."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from critiq.annotate import annotate, draw_pairs
from critiq.data.loaders import iter_examples, load_pairs
from critiq.data.models import Point
from critiq.errors import CritiqError
from critiq.llm.client import run_sync
from critiq.mine import CritiQFlow, FlowConfig
from critiq.mine.judge import PairAnswer, Worker
from critiq.mine.manager import Critique, Proposal, Proposals, Reason
from critiq.report import render_html
from critiq.score import score_corpus, select_file
from critiq.scorer import make_scorer
from tests.fakes import ScriptedClient, user_text
from tests.paths import EXAMPLES

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
HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)> & "quotes"'
NAMES = [
    "input_validation",
    "docstrings",
    "error_handling",
    "resource_cleanup",
    "naming",
    "type_hints",
    "security",
    "tests_included",
    "constants",
    "efficiency",
    "readability",
    "edge_cases",
]
FENCED = re.compile(r"<<<TEXT_[AB]-\w+\n(.*?)\nTEXT_[AB]-\w+>>>", re.DOTALL)


def _digest(*parts: str) -> int:
    return int(hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8], 16)


class Pipeline:
    """A scripted manager and worker: each criterion is right on a share of the human pairs fixed by its name."""

    def __init__(self, pairs: list[Any]) -> None:
        self.better = {frozenset((p.a, p.b)): (p.a if p.preferred == "a" else p.b) for p in pairs}
        self.proposed = 0

    def __call__(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PairAnswer:
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            first, second = FENCED.findall(prompt)[:2]
            roll = _digest(name, first, second) % 100
            if roll < 8:
                return {"rationale": "does not apply", "verdict": "none"}
            better = self.better.get(frozenset((first, second)))
            if better is None:  # a corpus pair: prefer documented, typed code
                marks = [t.count('"""') + t.count("->") + t.count("with ") for t in (first, second)]
                return {"rationale": "more careful code", "verdict": "A" if marks[0] >= marks[1] else "B"}
            skill = (90, 70, 40)[_digest(name) % 3]
            right = roll < skill
            return {"rationale": f"{name} decides", "verdict": "A" if (better == first) == right else "B"}
        if schema is Reason:
            return {"reason": "the preferred snippet handles edge cases"}
        if schema is Critique:
            return {"critique": "the criterion should name the edge cases it checks"}
        if schema is Proposal:
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            return {"name": name, "description": f"Prefer code that handles edge cases explicitly ({name}, v2)."}
        if schema is Proposals:
            wanted = int(m.group(1)) if (m := re.search(r"(\d+) new", prompt)) else 1
            names = NAMES[self.proposed : self.proposed + max(1, wanted)]
            self.proposed += len(names)
            return {"criteria": [{"name": n, "description": f"Prefer the snippet with better {n}."} for n in names]}
        raise AssertionError(f"unexpected schema {schema}")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mine → annotate → train-scorer → score → select, with the scripted client and the real pipeline code."""
    root = tmp_path_factory.mktemp("report") / "run"
    pairs = load_pairs(EXAMPLES / "code_pairs.jsonl")[:12]
    script = Pipeline(pairs)
    client = ScriptedClient(script)
    config = FlowConfig(n_criteria=4, iterations=2, kb_candidates=4, swap="both", task=f"Python code {HOSTILE}", seed=1)
    result = CritiQFlow(config, manager=client, worker=client).fit(pairs, run_dir=root / "mine")  # type: ignore[arg-type]
    assert result.criteria

    corpus = root / "corpus.jsonl"
    shutil.copy(EXAMPLES / "code_corpus.jsonl", corpus)
    with corpus.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "hostile", "text": f"# {HOSTILE}\nx = 1\n"}) + "\n")
    annotator = ScriptedClient(script)
    documents = (e for e in iter_examples(corpus) if isinstance(e, Point))
    summary = run_sync(
        annotate(draw_pairs(documents, seed=0), result.criteria, Worker(annotator), root / "labeled.jsonl")  # type: ignore[arg-type]
    )
    (root / "annotate.json").write_text(
        json.dumps({"summary": summary.model_dump(mode="json"), "usage": annotator.usage.model_dump()})
    )

    records = [json.loads(line) for line in (root / "labeled.jsonl").read_text().splitlines()]
    scorer = make_scorer("ngram")
    scorer.fit(records, valid_fraction=0.2)
    scorer.save(root / "scorer")
    score_corpus(corpus, root / "scorer", root / "scored.parquet")
    chosen = select_file(root / "scored.parquet", root / "selected.jsonl", top_k=20, temperature=0.5, seed=3)
    selection = {"method": "top_k", "k": 20, "temperature": 0.5, "seed": 3, "selected": chosen.n_selected}
    (root / "selection.json").write_text(json.dumps(selection))
    render_html(root)
    return root


def _page(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def test_report_has_every_section(run_dir: Path) -> None:
    page = _page(run_dir)
    criteria = json.loads((run_dir / "mine" / "criteria.json").read_text())["criteria"]
    for anchor in ("criteria", "votes", "bias", "retrieval", "annotate", "usage", "scorer", "scores", "selection"):
        assert f'id="{anchor}"' in page, anchor
    assert "<table><thead><tr><th>criterion</th><th>accuracy</th><th>coverage</th><th>n</th><th>95% interval" in page
    for criterion in criteria:
        assert f"<strong>{criterion['name']}</strong>" in page
        assert criterion["origin"] in ("knowledge_base", "manager", "user")
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
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page  # the task line, in the flow settings


def test_example_texts_are_escaped_and_shortened() -> None:
    from critiq.report.html import examples_block, shorten

    text = HOSTILE + "\n" + "line\n" * 100
    block = examples_block("top", [{"id": HOSTILE, "score": 1.5, "text": shorten(text)}])
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
                })"""
            )
            shot = page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
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
