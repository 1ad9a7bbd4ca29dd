"""`critiq ablate` end to end on the embedded model, on a tiny split: the JSON rows and their numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from critiq.data import load_pairs
from critiq.llm.local import LOCAL_MODEL
from critiq.mine.ablation import METHODS
from critiq.stats import wilson_interval
from tests.embedded_runs import ABLATE_FLAGS, ABLATE_TEST, ABLATE_TRAIN, code_pairs

FIELDS = {"method", "accuracy", "n", "ci_low", "ci_high", "coverage", "requests", "prompt_tokens", "completion_tokens"}
FIELDS |= {"decided_accuracy", "decided_ci_low", "decided_ci_high"}


@pytest.mark.llm
def test_ablate_runs_every_method_on_the_embedded_model(tmp_path: Path, local_server: Any) -> None:
    pairs = code_pairs()
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs[ABLATE_TRAIN]))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs[ABLATE_TEST]))
    # the session's request cache (CRITIQ_CACHE_DIR): the README's `critiq ablate` runs these same requests later
    args = ["ablate", "train.jsonl", "--test", "test.jsonl", "--out", "abl", *ABLATE_FLAGS]
    args += ["--model", LOCAL_MODEL, "--api-base", local_server.api_base, "--concurrency", "1", "--timeout", "600"]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | {"COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "critiq.cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    rows = doc["rows"]
    assert [r["method"] for r in rows] == list(METHODS)
    test_pairs = load_pairs(tmp_path / "test.jsonl")
    gold = {p.id: p.gold for p in test_pairs}
    judged = [json.loads(line) for line in (tmp_path / "abl" / "test_judgments.jsonl").read_text().splitlines()]
    for row in rows:
        assert set(row) >= FIELDS, row
        votes = [j for j in judged if j["method"] == row["method"]]
        assert sorted(j["id"] for j in votes) == sorted(gold) and row["n"] == len(gold) == 2
        assert all(set(j["verdicts"]) == set(row["criteria"]) for j in votes)  # the criteria that voted
        decided = [j for j in votes if j["vote"] is not None]
        correct = sum(j["vote"] == gold[j["id"]] for j in decided)
        assert row["coverage"] == len(decided) / 2
        assert row["accuracy"] == correct / 2  # a tie counts as wrong, as in the reference
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(correct, 2))
        if decided:
            assert row["decided_accuracy"] == correct / len(decided)
            assert (row["decided_ci_low"], row["decided_ci_high"]) == pytest.approx(
                wilson_interval(correct, len(decided))
            )
        else:
            assert row["decided_accuracy"] is None and row["decided_ci_low"] is None
        assert row["requests"] >= 0 and row["prompt_tokens"] >= 0 and row["completion_tokens"] >= 0
    by_method = {r["method"]: r for r in rows}
    # a baseline judges each of the 2 test pairs in at most 2 orders, each request re-asked at most once: <= 8
    assert by_method["flow"]["requests"] > 0 and by_method["flow"]["prompt_tokens"] > 0
    assert by_method["overall"]["criteria"] == ["overall"] and 2 <= by_method["overall"]["requests"] <= 8
    assert by_method["all-in-one"]["criteria"] == ["all_criteria"] and by_method["all-in-one"]["requests"] <= 8
    assert len(by_method["best-kb-criterion"]["criteria"]) == 1
    assert by_method["best-kb-criterion"]["requests"] <= 8  # test cells only: its training cells were the flow's
    assert (tmp_path / "abl" / "flow" / "report.md").exists() and (tmp_path / "abl" / "no-kb" / "state.json").exists()
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert all(f"| {m} |" in table for m in METHODS) and "mechanics" in table
    assert "ablation" in result.stderr  # the printed table
