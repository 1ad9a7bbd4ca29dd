"""The CLI against a faulty server: transport faults and garbage are absorbed, failures counted and retried."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.stub_server import StubServer
from tests.paths import REPO
from tests.reliability.cli_run import (
    CRITERIA,
    KEEP_ALL,
    assert_ok,
    cached_answers,
    code_pairs,
    critiq,
    read_jsonl,
    stub_args,
    write_jsonl,
)

pytestmark = pytest.mark.timeout(300)


TRANSPORT_FAULTS = ["429:1", "500", "503", "slow:8", "reset"]
GARBAGE = ["empty", "nonjson", "missing", "refusal"]


def test_mine_finishes_against_a_faulty_server(stub_server: StubServer, work: Path) -> None:
    """Each injected fault is absorbed by exactly one retry (transport) or one re-ask / parse failure (garbage)."""
    script = [x for pair in zip(TRANSPORT_FAULTS, [*GARBAGE, "ok"], strict=True) for x in pair]
    stub_server.script(script)
    flags = ["--n-criteria", 2, "--iterations", 1, "--no-kb", "--timeout", 3, "--concurrency", 2, *KEEP_ALL]
    result = critiq(["mine", "pairs.jsonl", "--out", "run", *flags, *stub_args(stub_server, work / "cache")], work)
    assert_ok(result)
    stats = stub_server.stats()
    assert stats["pending"] == 0 and all(stats["counts"].get(a.split(":")[0]) for a in script[:-1])
    usage = json.loads((work / "run" / "usage.json").read_text())
    assert usage["requests"] == stats["total"]  # every HTTP attempt counted
    # at most 5 transport faults in all: no request can use up its 5 retries, so each fault is one retry
    assert (usage["retries"], usage["failures"]) == (len(TRANSPORT_FAULTS), 0)
    assert usage["reasks"] + usage["parse_failures"] == len(GARBAGE)
    assert usage["reasks"] >= 1
    criteria = json.loads((work / "run" / "criteria.json").read_text())["criteria"]
    assert criteria and all(c["stats"]["n"] == 6 for c in criteria)


def test_mine_counts_requests_that_fail_after_retries(stub_server: StubServer, work: Path) -> None:
    stub_server.script(["500", "503"])
    flags = ["--n-criteria", 1, "--iterations", 0, "--no-kb", "--max-retries", 0, *KEEP_ALL]
    result = critiq(["mine", "pairs.jsonl", "--out", "run", *flags, *stub_args(stub_server, work / "cache")], work)
    assert_ok(result)
    usage = json.loads((work / "run" / "usage.json").read_text())
    assert (usage["failures"], usage["retries"], usage["requests"]) == (2, 0, stub_server.stats()["total"])
    state = json.loads((work / "run" / "state.json").read_text())
    assert len(state["notes"]) == 4  # the two warm-up answers that failed are missing, the run went on


def test_judge_finishes_against_a_faulty_server(stub_server: StubServer, work: Path) -> None:
    stub_server.script([*TRANSPORT_FAULTS, *GARBAGE])
    flags = ["--criteria", "criteria.json", "--out", "out.jsonl", "--timeout", 3]
    result = critiq(["judge", "pairs.jsonl", *flags, *stub_args(stub_server, work / "cache")], work)
    assert_ok(result)
    assert stub_server.stats()["pending"] == 0
    records = read_jsonl(work / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted(p["id"] for p in code_pairs(6))
    assert not (work / "out.jsonl.failed.jsonl").exists()
    assert "0 failed" in result.stderr


def test_annotate_records_failures_and_resume_retries_them(stub_server: StubServer, work: Path) -> None:
    corpus = [json.loads(line) for line in (REPO / "examples/data/code_corpus.jsonl").read_text().splitlines()[:16]]
    write_jsonl(work / "corpus.jsonl", corpus)
    args = ["annotate", "corpus.jsonl", "--corpus", "--criteria", "criteria.json", "--out", "labels.jsonl"]
    args += ["--max-retries", 0, "--concurrency", 2, *stub_args(stub_server, work / "cache")]
    stub_server.script(["500", "reset", "503", "empty", "missing"])
    first = critiq(args, work)
    assert_ok(first)
    written = read_jsonl(work / "labels.jsonl")
    failed = read_jsonl(work / "labels.jsonl.failed.jsonl")
    assert 1 <= len(failed) <= 5 and all(f["error"] for f in failed)
    assert {r["id"] for r in written}.isdisjoint(f["id"] for f in failed)
    assert len(written) + len(failed) == 8  # 16 documents → 8 pairs
    cells = 8 * len(CRITERIA)
    answered = cached_answers(work / "cache")
    assert answered < cells

    stub_server.script([])
    again = critiq([*args, "--resume"], work)
    assert_ok(again)
    records = read_jsonl(work / "labels.jsonl")
    assert Counter(r["id"] for r in records) == Counter({r["id"]: 1 for r in records}) and len(records) == 8
    assert {f["id"] for f in failed} <= {r["id"] for r in records}
    assert not (work / "labels.jsonl.failed.jsonl").exists()
    assert stub_server.stats()["total"] == cells - answered  # only the cells that had failed were asked again
