"""`annotate` at scale against the local stub OpenAI-compatible server with injected latency.

For each concurrency: annotate the same pairs with every criterion (full vote) and with the early stop; print
requests per pair (and that the labels are identical), the mean number of requests in flight at the server ÷ the
concurrency (goal ≥ 0.9), pairs/s against the ideal concurrency ÷ latency ÷ requests per pair, client CPU per
request, and the machine's cores. Then the early stop's saving in simulation (independent criteria of accuracy
0.8), and the peak RSS of `critiq annotate --corpus` on generated corpora of growing size (flat = streaming).

Prints figures; asserts nothing. Usage:
    python bench/annotate.py [--pairs 2000] [--criteria 8] [--concurrency 64 256] [--latency 0.1] [--jitter 0.05]
                             [--rss-runs 100000:2000 1000000:20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test fakes (tests/fakes/) are not in the package

from critiq.annotate import annotate  # noqa: E402
from critiq.annotate.early_stop import expected_asked, stopped_vote  # noqa: E402
from critiq.data.models import Criterion, Pair  # noqa: E402
from critiq.judge.worker import Worker  # noqa: E402
from critiq.llm import LLMClient, ModelConfig  # noqa: E402
from critiq.llm.client import run_sync  # noqa: E402
from tests.fakes.stub_server import StubServer  # noqa: E402

WORDS = ["the", "of", "data", "model", "text", "quality", "code", "function", "value", "result", "test", "clear"]


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_pairs(n: int, seed: int = 0) -> list[Pair]:
    rng = random.Random(seed)
    return [Pair(id=f"b{i}", a=text(rng, 60), b=text(rng, 60)) for i in range(n)]


def make_criteria(n: int) -> list[Criterion]:
    return [Criterion(name=f"criterion_{i}", description=f"Which text is better in respect {i}.") for i in range(n)]


def run(
    stub: StubServer, pairs: list[Pair], criteria: list[Criterion], concurrency: int, early: bool
) -> dict[str, Any]:
    config = ModelConfig(model="openai/stub", api_base=stub.api_base, timeout=120)
    client = LLMClient(config, concurrency=concurrency)
    worker = Worker(client, swap="none")
    stub.script([])
    samples: list[int] = []

    async def job(out: Path) -> Any:
        async def sample() -> None:  # what the client holds in flight, every 10 ms
            while True:
                samples.append(client.in_flight)
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            return await annotate(pairs, criteria, worker, out, early_stop=early, concurrency=concurrency)
        finally:
            sampler.cancel()

    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "out.jsonl"
        cpu, wall = time.process_time(), time.perf_counter()
        summary = run_sync(job(out))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        labels = {r["id"]: r["preferred"] for r in map(json.loads, out.read_text().splitlines())}
    stats = stub.stats()
    return {
        "requests": stats["total"],
        "wall": wall,
        "cpu": cpu,
        "in_flight": stats["busy_seconds"] / wall,
        "client_in_flight": sum(samples) / max(len(samples), 1),
        "latency": stats["busy_seconds"] / max(stats["total"], 1),
        "labels": labels,
        "written": summary.written,
    }


def rss_of_corpus_run(lines: int, pairs: int, stub: StubServer, criteria: list[Criterion]) -> float:
    """Peak RSS (MiB) of `critiq annotate --corpus` over a generated corpus of ``lines`` documents."""
    rng = random.Random(lines)
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus.jsonl"
        with corpus.open("w") as handle:
            for i in range(lines):
                handle.write(json.dumps({"id": f"d{i}", "text": text(rng, rng.randint(10, 30))}) + "\n")
        (Path(work) / "criteria.json").write_text(json.dumps([c.model_dump(mode="json") for c in criteria]))
        command = [
            sys.executable, "-c",
            "import resource, sys; from critiq.cli.main import main; sys.argv = ['critiq'] + sys.argv[1:]\n"
            "try:\n    main()\nfinally:\n"
            "    print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)",
            "annotate", str(corpus), "--corpus", "--max-pairs", str(pairs),
            "--criteria", str(Path(work) / "criteria.json"),
            "--out", str(Path(work) / "out.jsonl"), "--model", "openai/stub", "--api-base", stub.api_base,
            "--no-cache", "--concurrency", "64",
        ]  # fmt: skip
        stub.script([], delay=0.0)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        line = [x for x in result.stderr.splitlines() if x.startswith("RSS ")]
        if result.returncode != 0 or not line:
            print(result.stderr[-2000:])
            return float("nan")
        return int(line[-1].split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--criteria", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--latency", type=float, default=0.1, help="mean injected latency (s)")
    parser.add_argument("--jitter", type=float, default=0.05, help="latency drawn uniformly from latency ± jitter")
    parser.add_argument(
        "--rss-runs",
        nargs="*",
        default=["100000:2000", "1000000:2000", "1000000:20000"],
        help="LINES:PAIRS: corpus size and pairs annotated of each peak-RSS run",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores (load average {load:.1f}); stub server in its own process")
    pairs, criteria = make_pairs(args.pairs), make_criteria(args.criteria)
    with StubServer(delay=args.latency, jitter=args.jitter, vary=True) as stub:
        run(stub, pairs[:50], criteria, 16, False)  # warm-up: imports, connections
        for concurrency in args.concurrency:
            full = run(stub, pairs, criteria, concurrency, early=False)
            early = run(stub, pairs, criteria, concurrency, early=True)
            same = full["labels"] == early["labels"] and len(full["labels"]) == args.pairs
            print(f"\nconcurrency {concurrency}, {args.pairs} pairs × {args.criteria} criteria, "
                  f"latency {args.latency * 1000:.0f} ± {args.jitter * 1000:.0f} ms")  # fmt: skip
            for name, result in (("full vote", full), ("early stop", early)):
                per_pair = result["requests"] / args.pairs
                ideal = concurrency / result["latency"] / per_pair
                print(
                    f"  {name:10s}: {per_pair:.2f} requests/pair · in flight at the server {result['in_flight']:.1f} "
                    f"= {result['in_flight'] / concurrency:.2f} × concurrency (held by the client: "
                    f"{result['client_in_flight'] / concurrency:.2f}) · {args.pairs / result['wall']:.0f} "
                    f"pairs/s (ideal {ideal:.0f}) · client CPU {1000 * result['cpu'] / result['requests']:.2f} "
                    f"ms/request · wall {result['wall']:.1f} s"
                )
            saved = 1 - early["requests"] / full["requests"]
            # the stub answers A, B or none with equal chance: criteria of accuracy 0.5 and coverage 2/3
            model = 1 - expected_asked([0.5] * args.criteria, [2 / 3] * args.criteria, 0) / args.criteria
            print(f"  early stop: {saved:.1%} fewer requests ({model:.1%} expected for the stub's answers), "
                  f"labels identical: {same}")  # fmt: skip
        print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

        exact = expected_asked([0.8] * 8, [1.0] * 8, margin=0)
        rng = random.Random(0)
        rows = [["A" if rng.random() < 0.8 else "B" for _ in range(8)] for _ in range(100_000)]
        simulated = sum(stopped_vote(r, 0) for r in rows) / len(rows)
        print(
            f"\nsimulation, 8 independent criteria of accuracy 0.8: {exact:.3f} asked per pair exactly "
            f"({1 - exact / 8:.1%} fewer), {simulated:.3f} in 100,000 simulated pairs ({1 - simulated / 8:.1%} fewer)"
        )
        for spec in args.rss_runs:
            lines, count = (int(x) for x in spec.split(":"))
            rss = rss_of_corpus_run(lines, count, stub, criteria[:2])
            print(
                f"peak RSS of `critiq annotate --corpus` on {lines:,} lines, {count:,} pairs × 2 criteria: "
                f"{rss:.0f} MiB"
            )


if __name__ == "__main__":
    main()
