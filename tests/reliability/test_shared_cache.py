"""Two CLI processes on one --cache-dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.fakes.stub_server import StubServer
from tests.reliability.cli_run import (
    CRITERIA,
    cached_answers,
    code_pairs,
    read_jsonl,
    started,
    stub_args,
    write_jsonl,
)

pytestmark = pytest.mark.timeout(300)


def test_two_judge_runs_share_one_cache(stub_server: StubServer, work: Path) -> None:
    """Two processes on one --cache-dir (the sqlite-level test is tests/test_cache.py::test_two_processes_...)."""
    write_jsonl(work / "more.jsonl", code_pairs(20))
    stub_server.script([], delay=0.1)  # 40 requests, 2 at a time: each run sends for about 2 s
    try:
        flags = ["--criteria", "criteria.json", "--concurrency", 2, *stub_args(stub_server, work / "cache")]
        runs = [started(["judge", "more.jsonl", "--out", f"out{i}.jsonl", *flags], work, capture=True) for i in (1, 2)]
        for run in runs:
            _, stderr = run.communicate(timeout=240)
            assert run.returncode == 0, stderr[-2000:]
        assert stub_server.stats()["max_in_flight"] > 2  # more than one process's limit: they ran at the same time
    finally:
        stub_server.script([], delay=0.0)
    first, second = (sorted(read_jsonl(work / f"out{i}.jsonl"), key=lambda r: r["id"]) for i in (1, 2))
    assert first == second and len(first) == 20
    cells = 20 * len(CRITERIA)
    assert cached_answers(work / "cache") == cells
    with sqlite3.connect(work / "cache" / "requests.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
