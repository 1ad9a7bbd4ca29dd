"""`annotate` at scale: early stop against a real HTTP server, no barriers, dry runs that send nothing."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from critiq.annotate import annotate
from critiq.annotate.early_stop import asking_order, expected_asked
from critiq.annotate.estimate import estimate_annotate
from critiq.data.loaders import load_pairs
from critiq.data.models import Criterion, CriterionStats, Pair
from critiq.judge.answers import PairAnswer
from critiq.judge.worker import Worker
from critiq.llm.client import Completion
from critiq.llm.config import ModelConfig
from critiq.llm.local import KEY_VARIABLES
from critiq.llm.usage import Usage
from critiq.scorer import NgramScorer
from tests.fakes.forked_cli import run_cli
from tests.fakes.stub_server import StubServer
from tests.paths import EXAMPLES

pytestmark = pytest.mark.timeout(300)

CRITERIA = [
    Criterion(name=f"aspect_{i}", description=f"Which text is better in aspect {i}.", stats=stats)
    for i, stats in enumerate(
        [CriterionStats(accuracy=a, coverage=c, n=40) for a, c in [(0.9, 1.0), (0.7, 0.8), (0.8, 0.9)]] + [None] * 5
    )
]


@pytest.fixture(scope="module")
def varied_stub() -> Iterator[StubServer]:
    """Answers picked by a hash of the request: each (pair, criterion) gets its own A, B or none."""
    with StubServer(vary=True) as stub:
        yield stub


def pairs(n: int) -> list[Pair]:
    rows = [json.loads(line) for line in (EXAMPLES / "code_pairs.jsonl").read_text().splitlines()]
    return [
        Pair(id=f"p{i}", a=rows[i % len(rows)]["a"] + f"\n# {i}", b=rows[i % len(rows)]["b"] + f"\n# {i}")
        for i in range(n)
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return env | {"COLUMNS": "300", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def critiq(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli([str(a) for a in args], cwd=cwd, env=_env(), timeout=240)  # forked from a warm process


def write_inputs(work: Path, n: int) -> None:
    (work / "pairs.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs(n)))
    (work / "criteria.json").write_text(json.dumps([c.model_dump(mode="json") for c in CRITERIA]))


def test_early_stop_gives_the_full_votes_labels_with_fewer_requests(varied_stub: StubServer, tmp_path: Path) -> None:
    write_inputs(tmp_path, 40)
    model = ["--model", "openai/stub", "--api-base", varied_stub.api_base, "--no-cache", "--concurrency", 16]
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    requests: dict[str, int] = {}
    for mode in ("--no-early-stop", "--early-stop"):
        varied_stub.script([])
        out = tmp_path / f"{mode.strip('-')}.jsonl"
        result = critiq(
            "annotate", "pairs.jsonl", "--criteria", "criteria.json", "--out", out, mode, *model, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr[-2000:]
        requests[mode] = varied_stub.stats()["total"]
        runs[mode] = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    full, early = runs["--no-early-stop"], runs["--early-stop"]
    assert requests["--no-early-stop"] == 40 * len(CRITERIA)
    assert set(full) == set(early) and len(early) == 40
    for pair_id, record in early.items():
        assert record["preferred"] == full[pair_id]["preferred"]  # the same label, pair by pair
        asked = {name: v for name, v in record["votes"].items() if v is not None}
        assert all(full[pair_id]["votes"][name] == v for name, v in asked.items())  # the same answers where asked
        assert record["asked"] == len(asked) <= len(CRITERIA)
    assert requests["--early-stop"] == sum(r["asked"] for r in early.values()) < requests["--no-early-stop"]
    saved = requests["--no-early-stop"] - requests["--early-stop"]
    assert f"early stop: {requests['--early-stop']} of {40 * len(CRITERIA)} criterion verdicts asked" in result.stderr
    assert saved > 0
    # the records stay a training set: load_pairs reads them and a scorer trains on them
    loaded = load_pairs(tmp_path / "early-stop.jsonl")
    assert [p.preferred for p in loaded] == [early[p.id]["preferred"] for p in loaded]
    labelled = [p for p in loaded if p.preferred is not None]
    assert NgramScorer().fit(labelled, valid_fraction=0.0).n_train == len(labelled) > 0


class DemandClient:
    """Answers after a random number of event-loop turns; records how many requests were open as each began."""

    def __init__(self, seed: int = 0) -> None:
        self.config = ModelConfig(model="openai/demand")
        self.usage = Usage()
        self.open = 0
        self.seen: list[tuple[str, int]] = []  # (pair id, requests already open when this one began)
        self.rng = random.Random(seed)

    async def complete(self, messages: list[dict[str, str]], **params: Any) -> Completion:
        pair_id = messages[-1]["content"].split("ID ", 1)[1].split(".", 1)[0]
        self.seen.append((pair_id, self.open))
        self.open += 1
        self.usage.requests += 1
        try:
            for _ in range(self.rng.randint(1, 30)):
                await asyncio.sleep(0)
            verdict = self.rng.choice(["A", "B", "none"])
            text = json.dumps({"rationale": "r", "verdict": verdict})
            return Completion(text=text, parsed=PairAnswer(rationale="r", verdict=verdict))  # type: ignore[arg-type]
        finally:
            self.open -= 1


@pytest.mark.parametrize("early_stop", [True, False])
def test_no_barriers_every_worker_keeps_a_request_open_until_the_input_runs_out(
    tmp_path: Path, early_stop: bool
) -> None:
    client = DemandClient()
    examples = [Pair(id=f"q{i}", a=f"ID q{i}. first text", b=f"ID q{i}. second text") for i in range(300)]
    workers = 16
    worker = Worker(client, swap="none")  # type: ignore[arg-type]
    summary = asyncio.run(
        annotate(iter(examples), CRITERIA, worker, tmp_path / "out.jsonl", early_stop=early_stop, concurrency=workers)
    )
    assert summary.written == 300
    index = {e.id: i for i, e in enumerate(examples)}
    # past the start and before the last `workers` pairs, requests begin while about every other worker has one
    # open (a worker between two waves of one pair has none for one event-loop turn): nothing waits for a batch's
    # slowest request, as a gather per batch would at each batch tail
    steady = [open_ for pair_id, open_ in client.seen if workers <= index[pair_id] < len(examples) - workers]
    assert steady and min(steady) >= workers * 3 // 4
    assert sum(steady) / len(steady) >= workers
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(index)  # one record per id, in completion order
    assert not worker.memo  # nothing of a finished pair is kept


def test_annotate_dry_run_sends_nothing_and_counts_right(varied_stub: StubServer, tmp_path: Path) -> None:
    write_inputs(tmp_path, 30)
    varied_stub.script([])
    model = ["--model", "openai/stub", "--api-base", varied_stub.api_base, "--cache-dir", tmp_path / "cache"]
    args = ["annotate", "pairs.jsonl", "--criteria", "criteria.json", "--out", "out.jsonl", "--dry-run", *model]
    result = critiq(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert varied_stub.stats()["total"] == 0
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "cache").exists()
    assert "nothing was sent" in result.stderr and "unknown: self-hosted server" in result.stderr
    assert f"{30 * len(CRITERIA)}" in result.stderr

    ordered = [CRITERIA[i] for i in asking_order(CRITERIA)]
    accuracy = [c.stats.decided_accuracy if c.stats else 0.5 for c in ordered]  # P(right | it answers)
    coverage = [c.stats.coverage if c.stats else 1.0 for c in ordered]
    config = ModelConfig(model="gpt-4o-mini", max_tokens=100)
    run = estimate_annotate(iter(pairs(30)), CRITERIA, config, swap="both", sample=8)
    worker = run.roles["worker"]
    assert worker.requests_upper == 30 * len(CRITERIA) * 2  # both orders
    assert worker.requests_expected == pytest.approx(30 * 2 * expected_asked(accuracy, coverage, 0))
    assert worker.completion_tokens_upper == worker.requests_upper * 100
    assert worker.prompt_tokens_per_request > 100  # a code pair and the instructions, counted by litellm
    assert worker.price == "litellm price map" and worker.cost_upper is not None
    assert 0 < worker.cost_expected < worker.cost_upper  # type: ignore[operator]
    unmapped = estimate_annotate(iter(pairs(3)), CRITERIA, ModelConfig(model="openai/not-a-model"), early_stop=False)
    assert (
        unmapped.roles["worker"].cost_upper is None and "not in litellm's price map" in unmapped.roles["worker"].price
    )
    assert unmapped.roles["worker"].requests_expected == 3 * len(CRITERIA)
    done = {"p0", "p1"}  # --resume: ids already in --out are not counted
    assert estimate_annotate(iter(pairs(30)), CRITERIA, config, skip_ids=done).examples == 28


def test_mine_dry_run_sends_nothing(varied_stub: StubServer, tmp_path: Path) -> None:
    write_inputs(tmp_path, 6)
    labelled = [json.loads(line) | {"preferred": "a"} for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labelled))
    varied_stub.script([])
    model = ["--model", "openai/stub", "--api-base", varied_stub.api_base, "--cache-dir", tmp_path / "cache"]
    flags = ["--n-criteria", 4, "--iterations", 2, "--kb-candidates", 10]
    result = critiq("mine", "pairs.jsonl", "--out", "run", "--dry-run", *flags, *model, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert varied_stub.stats()["total"] == 0
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    # worker: retrieval 10 × 6 + evaluation 3 × 4 × 6 = 132; manager: warm-up 6 + proposal 3 + 2 reflections ×
    # (4 criteria × (a critique for each of up to 6 wrong cases + 1 rewrite) + 1 proposal) = 67
    assert "132" in result.stderr and "67" in result.stderr and "nothing was sent" in result.stderr
