"""The typed views of a run directory's files: they take what the pipeline writes as it is, strictly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from critiq.llm.usage import Usage
from critiq.report.lines import criterion_lines, history_rows
from critiq.rundir import Annotation, FlowCriteria, RunFiles, RunNotes, RunState, ScorerManifest, Selection
from critiq.rundir.flow import IterationRows
from critiq.rundir.lenient import validate_leniently


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_views_take_what_the_pipeline_wrote_strictly(run_dir: Path) -> None:
    mine = run_dir / "mine"
    raw = _json(mine / "criteria.json")
    criteria = FlowCriteria.model_validate(raw)  # strict: no context, a mismatch raises
    assert [c.name for c in criteria.criteria] == [c["name"] for c in raw["criteria"]]
    assert criteria.position_bias is not None and criteria.position_bias.model_dump() == raw["position_bias"]
    assert criteria.vote is not None and criteria.vote.model_dump(mode="json") == raw["vote"]
    assert criteria.models == raw["models"] and criteria.thresholds is not None
    assert (criteria.thresholds.low, criteria.thresholds.high) == (raw["thresholds"]["low"], raw["thresholds"]["high"])
    for view, written in zip(criteria.criteria, raw["criteria"], strict=True):
        assert [row.model_dump() for row in view.history] == written["history"]

    state = RunState.model_validate(_json(mine / "state.json"))
    assert state.retrieval is not None and state.config
    assert state.retrieval.model_dump() == _json(mine / "state.json")["retrieval"]
    assert state.model_dump(mode="json") == _json(mine / "state.json")  # the checkpoint, read back whole
    assert state.config["task"].startswith("Python code")
    rows = [
        row
        for path in sorted((mine / "iterations").glob("*.json"))
        for row in IterationRows.model_validate(_json(path)).root
    ]
    assert rows == state.history

    assert Usage.model_validate(_json(mine / "usage.json")).requests > 0
    annotation = Annotation.model_validate(_json(run_dir / "annotate.json"))
    assert (
        annotation.summary is not None
        and annotation.summary.written == _json(run_dir / "annotate.json")["summary"]["written"]
    )
    manifest = ScorerManifest.model_validate(_json(run_dir / "scorer" / "scorer.json"))
    assert manifest.kind == "ngram" and manifest.fit_report is not None and manifest.fit_report.interval is not None
    selection = Selection.model_validate(_json(run_dir / "selection.json"))
    assert (selection.method, selection.k, selection.selected) == ("top_k", 20, 20)

    run = RunFiles.locate(run_dir)
    assert run.mine == mine and run.criteria() == criteria and run.state() == state and run.problems == []


def test_lines_follow_each_final_criterion(run_dir: Path) -> None:
    run = RunFiles.locate(run_dir)
    criteria, state = run.criteria(), run.state()
    history = history_rows(run, state, criteria)
    assert criteria is not None and len(history) == len(state.history if state else [])
    lines = criterion_lines(criteria, history)
    iterations = sorted({row.iteration for row in history})
    for line in lines:
        assert [v.iteration for v in line.versions] == iterations  # a final criterion's line runs through every one
        assert any(v.final for v in line.versions)
        assert all(v.other_name is None for v in line.versions if v.final)


def test_history_falls_back_to_the_iteration_files_then_criteria_json(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mine"
    shutil.copytree(run_dir / "mine", copy)
    expected = RunState.model_validate(_json(copy / "state.json")).history
    (copy / "state.json").unlink()
    run = RunFiles.locate(copy)
    assert history_rows(run, run.state(), run.criteria()) == sorted(expected, key=lambda r: (r.slot, r.iteration))
    shutil.rmtree(copy / "iterations")
    from_criteria = history_rows(run, None, run.criteria())
    assert from_criteria and all(row in expected for row in from_criteria)  # the final criteria's lines only


def test_strict_by_default_lenient_when_asked() -> None:
    data = {"criteria": [{"name": "x", "description": "y", "stats": "broken"}, 3], "models": {"worker": 1}}
    with pytest.raises(ValidationError):
        FlowCriteria.model_validate(data)
    view, notes = validate_leniently(FlowCriteria, data)
    assert [c.name for c in view.criteria] == ["x"] and view.criteria[0].stats is None and view.models == {}
    assert [note.split(":")[0] for note in notes] == ["stats", "criteria[1]", "models['worker']"]
    with pytest.raises(ValidationError):  # what defines the file cannot be dropped
        validate_leniently(FlowCriteria, {"vote": None})
    assert validate_leniently(FlowCriteria, {"criteria": [], "position_bias": {}})[0].position_bias is None


def test_run_notes_name_models_under_any_model_key() -> None:
    notes = RunNotes.model_validate(
        {"settings": {"worker_model": "w", "nested": [{"model": "m"}]}, "models": {"a": "w", "b": "x"}}
    )
    assert notes.recorded_models() == ["w", "m", "x"] and not notes.uses_local_model


def test_a_file_of_the_wrong_shape_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "selection.json").write_text('"top_k"')
    (tmp_path / "labeled.jsonl").write_text('{"preferred": "a"}\n{"preferred": null}\n[1]\n')
    run = RunFiles.locate(tmp_path)
    assert run.selection() is None and run.label_counts() == {"a": 1, "tie": 2}
    assert run.problems == [
        "selection.json: not a Selection (Input should be a valid dictionary or instance of Selection)"
    ]
    (tmp_path / "annotate.json").write_text('{"summary": {"written": 3}}')
    (tmp_path / "scorer").mkdir()
    (tmp_path / "scorer" / "scorer.json").write_text('{"fit_report": {}}')
    assert run.annotation() is not None and run.scorer() is None
    assert run.problems[-1] == "scorer/scorer.json: not a ScorerManifest (kind: Field required)"
