"""The CLI killed mid-run or stopped by its budget, then resumed: the same result, nothing asked twice."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.stub_server import StubServer
from tests.reliability.cli_run import (
    CRITERIA,
    assert_json_files_whole,
    assert_ok,
    cached_answers,
    code_pairs,
    critiq,
    read_jsonl,
    started,
    stub_args,
    write_jsonl,
)

pytestmark = pytest.mark.timeout(300)


MINE_FLAGS = ["--n-criteria", 2, "--iterations", 1, "--no-kb", "--concurrency", 2]
CONCURRENCY = 2


@pytest.fixture(scope="module")
def slow_stub() -> Iterator[StubServer]:
    """Answers vary with the request (so runs have real structure) and take a moment (so a kill lands mid-run)."""
    with StubServer(delay=0.04, vary=True) as stub:
        yield stub


@dataclass
class Reference:
    requests: int
    outputs: dict[str, Any] = field(default_factory=dict)


def _kill_at(args: list[Any], cwd: Path, stub: StubServer, target: int) -> int:
    """Start the CLI, SIGKILL it once the server has received ``target`` requests; returns requests received."""
    stub.script([])
    process = started(args, cwd)
    try:
        while process.poll() is None and stub.stats()["total"] < target:
            time.sleep(0.005)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill"
    return stub.stats()["total"]


@pytest.fixture(scope="module")
def mine_reference(slow_stub: StubServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    work = tmp_path_factory.mktemp("mine-reference")
    write_jsonl(work / "pairs.jsonl", code_pairs(6))
    slow_stub.script([])
    result = critiq(["mine", "pairs.jsonl", "--out", "run", *MINE_FLAGS, *stub_args(slow_stub, work / "cache")], work)
    assert_ok(result)
    requests = slow_stub.stats()["total"]
    assert requests == cached_answers(work / "cache")  # every request distinct, every answer cached
    return Reference(requests, {"criteria": json.loads((work / "run" / "criteria.json").read_text())})


@pytest.mark.parametrize(("seed", "kills"), [(1, 1), (5, 1), (3, 2)])  # warm-up, iterations; twice
def test_mine_killed_and_resumed(
    slow_stub: StubServer, mine_reference: Reference, tmp_path: Path, seed: int, kills: int
) -> None:
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(6))
    args = ["mine", "pairs.jsonl", "--out", "run", *MINE_FLAGS, *stub_args(slow_stub, tmp_path / "cache")]
    rng = random.Random(seed)
    for attempt in range(kills):
        before = cached_answers(tmp_path / "cache")
        remaining = mine_reference.requests - before
        target = rng.randint(1, max(1, remaining - 2))  # at least two requests (and the report) still to go
        sent = _kill_at(args + (["--resume"] if attempt else []), tmp_path, slow_stub, target)
        assert_json_files_whole(tmp_path / "run")
        answered = cached_answers(tmp_path / "cache") - before
        assert 0 <= sent - answered <= 2 * CONCURRENCY  # only requests in flight at the kill were lost
    _resume_finishes_the_reference_run(args, tmp_path, slow_stub, mine_reference)


def test_mine_budget_stop_then_resume(slow_stub: StubServer, mine_reference: Reference, tmp_path: Path) -> None:
    """--max-requests stops cleanly (exit 3, one line, a checkpoint); --resume finishes the same run."""
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(6))
    args = ["mine", "pairs.jsonl", "--out", "run", *MINE_FLAGS, *stub_args(slow_stub, tmp_path / "cache")]
    slow_stub.script([])
    stopped = critiq([*args, "--max-requests", 10], tmp_path)
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    assert [line for line in stopped.stderr.splitlines() if line.startswith("stopped:")] == [
        "stopped: request budget of 10 reached; rerun with --resume to continue"
    ]
    assert slow_stub.stats()["total"] == 10  # not one more, though requests were in flight together
    assert "ERROR" not in stopped.stderr and "Traceback" not in stopped.stderr
    assert_json_files_whole(tmp_path / "run")
    _resume_finishes_the_reference_run(args, tmp_path, slow_stub, mine_reference)


def _annotate_pairs(n: int) -> list[dict[str, Any]]:
    base = code_pairs(12)
    return [
        {
            "id": f"pair-{i:03d}",
            "a": f"{p['a']}# variant {i}\n",
            "b": f"{p['b']}# variant {i}\n",
            "preferred": p["preferred"],
        }
        for i, p in enumerate(base[i % len(base)] for i in range(n))
    ]


ANNOTATE_FLAGS = ["--criteria", "criteria.json", "--out", "labels.jsonl", "--concurrency", 4]


def _annotate_work(directory: Path) -> Path:
    write_jsonl(directory / "pairs.jsonl", _annotate_pairs(70))  # three batches of up to 32
    (directory / "criteria.json").write_text(json.dumps(CRITERIA), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def annotate_reference(slow_stub: StubServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    work = _annotate_work(tmp_path_factory.mktemp("annotate-reference"))
    slow_stub.script([])
    result = critiq(["annotate", "pairs.jsonl", *ANNOTATE_FLAGS, *stub_args(slow_stub, work / "cache")], work)
    assert_ok(result)
    requests = slow_stub.stats()["total"]
    assert requests == cached_answers(work / "cache") == 70 * len(CRITERIA)
    records = {r["id"]: r for r in read_jsonl(work / "labels.jsonl")}
    return Reference(requests, {"records": records})


@pytest.mark.parametrize("seed", [2, 11, 20])  # early, middle and late kills
def test_annotate_killed_and_resumed(
    slow_stub: StubServer, annotate_reference: Reference, tmp_path: Path, seed: int
) -> None:
    work = _annotate_work(tmp_path)
    args = ["annotate", "pairs.jsonl", *ANNOTATE_FLAGS, *stub_args(slow_stub, work / "cache")]
    target = random.Random(seed).randint(1, annotate_reference.requests - 40)  # well before the end
    sent = _kill_at(args, work, slow_stub, target)
    assert_json_files_whole(work)
    if (work / "labels.jsonl").exists():
        ids = [
            json.loads(line)["id"]
            for line in (work / "labels.jsonl").read_text().splitlines(keepends=True)
            if line.endswith("\n")
        ]
        assert len(ids) == len(set(ids))  # no record twice, even torn
    answered = cached_answers(work / "cache")
    assert 0 <= sent - answered <= CONCURRENCY * 2
    slow_stub.script([])
    result = critiq([*args, "--resume"], work)
    assert_ok(result)
    assert slow_stub.stats()["total"] == annotate_reference.requests - answered
    records = read_jsonl(work / "labels.jsonl")
    assert len(records) == len({r["id"] for r in records}) == 70  # exactly one record per input id
    assert {r["id"]: r for r in records} == annotate_reference.outputs["records"]


def test_annotate_budget_stop_then_resume(slow_stub: StubServer, annotate_reference: Reference, tmp_path: Path) -> None:
    work = _annotate_work(tmp_path)
    args = ["annotate", "pairs.jsonl", *ANNOTATE_FLAGS, *stub_args(slow_stub, work / "cache")]
    slow_stub.script([])
    stopped = critiq([*args, "--max-requests", 80], work)
    assert stopped.returncode == 3 and "stopped: request budget of 80 reached" in stopped.stderr
    assert "ERROR" not in stopped.stderr and "Traceback" not in stopped.stderr
    assert slow_stub.stats()["total"] == 80
    answered = cached_answers(work / "cache")
    assert 80 - 4 <= answered <= 80  # the (up to 4) requests in flight at the stop may be lost, nothing else
    # no batches: every pair finished before the stop is kept (2 criteria a pair; up to 4 pairs were in progress)
    kept = read_jsonl(work / "labels.jsonl")
    assert answered // 2 - 4 <= len(kept) <= answered // 2 and len({r["id"] for r in kept}) == len(kept)
    slow_stub.script([])
    result = critiq([*args, "--resume"], work)
    assert_ok(result)
    assert slow_stub.stats()["total"] == annotate_reference.requests - answered
    assert {r["id"]: r for r in read_jsonl(work / "labels.jsonl")} == annotate_reference.outputs["records"]


def _resume_finishes_the_reference_run(args: list[Any], tmp_path: Path, stub: StubServer, reference: Reference) -> None:
    """``--resume`` asks only what the cache does not hold and ends with the uninterrupted run's criteria."""
    answered = cached_answers(tmp_path / "cache")
    stub.script([])
    result = critiq([*args, "--resume"], tmp_path)
    assert_ok(result)
    # nothing already answered was asked again, and nothing else was skipped
    assert stub.stats()["total"] == reference.requests - answered
    assert json.loads((tmp_path / "run" / "criteria.json").read_text()) == reference.outputs["criteria"]
    assert_json_files_whole(tmp_path / "run")
