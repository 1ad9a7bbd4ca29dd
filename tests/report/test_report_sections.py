"""What the merged issues added to a run directory, as the report shows it: labels, the flow's verdict, evidence,
critiques, unjudged criteria, failures, early stop, request form, length honesty and the ablation table."""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

from critiq.llm.errors import ProviderTimeout, RateLimited
from critiq.report import render_html
from critiq.rundir import Annotation, FitReport, RunFiles, RunState, read_criteria
from critiq.rundir.ablation import AblationTable
from critiq.rundir.annotation import error_kind, record_annotation
from critiq.rundir.flow import FlowCriteria
from critiq.rundir.labels import picked_kind
from critiq.stats import interval_text, pct
from tests.report.pipeline_run import nothing_passed


def _page(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    end = page.find("<h2", start)
    return page[start : end if end > 0 else None]


def test_labels_section_counts_what_the_label_file_holds(run_dir: Path) -> None:
    labels, skipped = _rows(run_dir / "pairs.jsonl"), _rows(run_dir / "pairs.skipped.jsonl")
    section = _section(_page(run_dir), "labels")
    assert f"pairs.jsonl: {len(labels)} labels" in section and f"{len(skipped)} skipped as a tie" in section
    for annotator in {row["metadata"]["annotator"] for row in labels}:
        count = sum(row["metadata"]["annotator"] == annotator for row in labels)
        assert f'<tr><td>{annotator}</td><td class="num">{count}</td></tr>' in section
    kinds = [picked_kind(row["metadata"]["picked"]) for row in labels]
    assert set(kinds) == {"random", "scorer unsure"}
    for kind in set(kinds):
        assert f'<tr><td>{kind}</td><td class="num">{kinds.count(kind)}</td></tr>' in section
    median = statistics.median(row["metadata"]["seconds"] for row in labels)
    assert f"median\n{median:,.4g}" in section
    assert picked_kind("criteria split 3–2 (of 5)") == "criteria split"


def test_ablation_section_shows_every_row(run_dir: Path) -> None:
    table = AblationTable.model_validate_json((run_dir / "ablation" / "ablation.json").read_text())
    assert [row.method for row in table.rows] == ["flow", "no-reflection", "best-kb-criterion"]
    section = _section(_page(run_dir), "ablation")
    for row in table.rows:
        cells = re.search(rf"<tr><td>{re.escape(row.method)}</td>(.*?)</tr>", section)
        assert cells, row.method
        numbers = re.findall(r'<td class="num">([^<]*)</td>', cells.group(1))
        interval = interval_text((row.ci_low, row.ci_high) if row.ci_low is not None else None)
        decided = interval_text((row.decided_ci_low, row.decided_ci_high) if row.decided_ci_low is not None else None)
        assert numbers[:7] == [
            pct(row.accuracy),
            interval,
            pct(row.decided_accuracy),
            decided,
            pct(row.coverage),
            str(row.n),
            f"{row.requests:,}",
        ]


def test_annotation_early_stop_and_form(run_dir: Path) -> None:
    annotation = Annotation.model_validate_json((run_dir / "annotate.json").read_text())
    summary = annotation.summary
    assert summary is not None and summary.early_stop and summary.saved > 0
    section = _section(_page(run_dir), "annotate")
    assert f"Early stop: {summary.asked} of {summary.asked + summary.saved} criterion" in section
    assert f"{summary.saved} saved ({pct(summary.saved / (summary.asked + summary.saved))})" in section
    assert "asked in the <code>json_schema</code> form" in section
    assert 'id="failures"' not in section  # nothing failed in this run


def test_failures_by_error_type(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    slow, limited = ProviderTimeout("read timed out", where="gpt-4o"), RateLimited("slow down", status=429)
    errors = [str(slow), str(limited), str(limited), "not judged"]
    failed = copy / "labeled.jsonl.failed.jsonl"
    failed.write_text("".join(json.dumps({"id": f"x{i}", "error": e}) + "\n" for i, e in enumerate(errors)))
    summary = Annotation.model_validate_json((copy / "annotate.json").read_text()).summary
    assert summary is not None
    record_annotation(
        copy / "labeled.jsonl", summary, None, form="json_object (the provider refused json_schema)", failed=failed
    )
    written = Annotation.model_validate_json((copy / "annotate.json").read_text())
    assert written.failures == {error_kind(str(limited)): 2, error_kind(str(slow)): 1, "not judged": 1}
    assert error_kind(str(limited)).endswith("(HTTP 429)") and "gpt-4o" not in error_kind(str(slow))
    section = _section(render_html(copy).read_text(encoding="utf-8"), "annotate")
    assert f'<tr><td>{error_kind(str(limited))}</td><td class="num">2</td></tr>' in section
    assert "json_object (the provider refused json_schema)" in section


def test_scorer_length_honesty(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "scorer" / "scorer.json").read_text())
    fit = FitReport.model_validate(manifest["fit_report"])
    assert fit.length_spearman is not None and fit.shorter_won_n > 0
    section = _section(_page(run_dir), "length")
    spearman = re.search(r"with text length</td><td class=\"num\">([^<]*)</td>", section)
    assert spearman and float(spearman.group(1)) == float(f"{fit.length_spearman:.4g}")
    shorter = f'<td class="num">{pct(fit.shorter_won_accuracy)}</td><td>{fit.shorter_won_n} pairs</td>'
    assert shorter in section and f'<td class="num">{pct(fit.longer_won_share)}</td>' in section
    assert "<td>length control</td><td>off</td>" in section


def test_evidence_critiques_and_failure_counts(run_dir: Path) -> None:
    flow = read_criteria(run_dir)
    assert flow.evidence is not None and flow.evidence.requests_trimmed == 0
    page = _page(run_dir)
    assert f"All {flow.evidence.notes} human-evidence notes reached every one" in _section(page, "evidence")
    critiqued = [row for c in flow.criteria for row in c.history if row.wrong is not None]
    state = RunState.model_validate_json((run_dir / "mine" / "state.json").read_text())
    reflected = [row for row in state.history if row.wrong is not None]
    assert reflected  # the mid criterion was critiqued
    for row in reflected + critiqued:
        assert f"critiqued {row.critiqued} of {row.wrong} wrong cases" in page
    header = _section(page, "criteria")
    assert "<th>failed judgments</th>" in header
    for criterion in flow.criteria:
        row = re.search(rf"<strong>{re.escape(criterion.name)}</strong>.*?</tr>", header, re.DOTALL)
        assert row and f'<td class="count">{criterion.failed}</td>' in row.group(0)


def test_nothing_passed_is_the_first_line_and_unjudged_criteria_are_named(run_dir: Path, tmp_path: Path) -> None:
    page = nothing_passed(run_dir, tmp_path / "mine").read_text(encoding="utf-8")
    flow = read_criteria(tmp_path / "mine")
    main = page[page.index("<main>") + len("<main>") :].lstrip()
    assert main.startswith(
        '<p id="verdict" class="banner error"><strong>No criterion reached decided accuracy 100.0%</strong>'
    )
    assert "The best 2 below the threshold" in main
    assert '<h2 id="criteria">Best criteria below the threshold (2, not final)</h2>' in page
    for criterion in flow.below_threshold:
        assert f"<strong>{criterion.name}</strong>" in page
    assert 'id="verdict"' not in _page(run_dir)
    state = RunState.model_validate_json((tmp_path / "mine" / "state.json").read_text())
    banner = re.search(r'<p id="unjudged".*?</p>', page, re.DOTALL)
    assert banner and f"{state.history[-1].name}, kb_silent." in banner.group(0)
    assert '<span class="unjudged">unjudged</span>' in page
    assert RunFiles.locate(tmp_path / "mine").problems == []


def test_criteria_json_is_written_by_its_model(run_dir: Path) -> None:
    raw = json.loads((run_dir / "mine" / "criteria.json").read_text())
    assert FlowCriteria.model_validate(raw).model_dump(mode="json") == raw  # strict, and nothing left out
