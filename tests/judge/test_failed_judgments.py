"""A failed request is ``verdict=None, failed=True``, never the abstention ``"none"``; old files still read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from critiq.data.models import Criterion, Judgment, Pair
from critiq.judge.metrics import criterion_stats, position_bias
from critiq.judge.vote import majority, vote_matrix
from critiq.judge.worker import Worker
from critiq.rundir.flow_dir import RunDir
from tests.fakes import ScriptedClient, user_text

CLEAR = Criterion(name="clear", description="Which text is clearer.")
PAIRS = [Pair(id=f"p{i}", a=f"text a {i}", b=f"text b {i}", preferred="a") for i in range(3)]


def answer(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> dict[str, Any] | None:
    """p0 fails, p1 abstains, p2 says A."""
    text = user_text(messages)
    if "text a 0" in text:
        return None
    return {"comparison": "c", "verdict": "none" if "text a 1" in text else "A"}


def judged() -> Worker:
    worker = Worker(ScriptedClient(answer), swap="none")
    asyncio.run(worker.judge(PAIRS, [CLEAR]))
    return worker


def test_a_failed_request_has_no_verdict_and_an_abstention_is_none() -> None:
    worker = judged()
    failed, abstained, decided = (worker.verdict(CLEAR, p) for p in PAIRS)
    assert failed is not None and (failed.verdict, failed.failed) == (None, True)
    assert failed.rationale == "scripted failure"  # the error, kept
    assert abstained is not None and (abstained.verdict, abstained.failed) == ("none", False)
    assert decided is not None and decided.verdict == "A" and decided.decided
    assert not failed.decided and not abstained.decided
    assert [cell for cell, _, _ in worker.missing(PAIRS, [CLEAR])] == [CLEAR]  # the failed cell is asked again


def test_counts_are_those_of_before_a_failure_and_an_abstention_are_wrong_not_judged() -> None:
    judgments = judged().verdicts(CLEAR, PAIRS)
    stats = criterion_stats(judgments, {p.id: p.gold for p in PAIRS})
    assert (stats.n, stats.judged, stats.correct) == (3, 1, 1)
    bias = position_bias([[j] for j in judgments])
    assert bias["answers"] == 1  # neither the failure nor the abstention picked a position
    assert majority(["A", None, "none"]) == "A"
    assert vote_matrix([["A", None, "none", "B"]]).tolist() == [[1.0, 0.0, 0.0, -1.0]]


def test_a_judgment_without_a_verdict_must_be_failed() -> None:
    with pytest.raises(ValidationError, match="must be failed"):
        Judgment(example_id="p", criterion="c", verdict=None)
    assert Judgment(example_id="p", criterion="c", verdict="none").verdict == "none"  # an abstention stays one


def test_an_old_run_directory_s_failed_none_reads_as_a_failure(tmp_path: Path) -> None:
    old = [
        {"key": "k1", "judgment": {"example_id": "p0", "criterion": "c", "verdict": "none", "failed": True}},
        {"key": "k2", "judgment": {"example_id": "p1", "criterion": "c", "verdict": "none"}},
    ]
    run = RunDir(tmp_path)
    run.judgments_file.write_text("".join(json.dumps(row) + "\n" for row in old))
    (_, failure), (_, abstention) = run.judgments()
    assert (failure.verdict, failure.failed) == (None, True)
    assert (abstention.verdict, abstention.failed) == ("none", False)
    assert json.loads(failure.model_dump_json())["verdict"] is None  # written again, it is null
