"""Does the order of a worker's requests matter to the embedded model's server? Seconds per request, two orders.

    python bench/prefix_order.py [--pairs 3] [--criteria 3] [--max-tokens 8]

Starts the embedded model's llama.cpp server (critiq[local]) and sends the worker's real per-criterion prompts for the
first ``--pairs`` bundled code pairs and ``--criteria`` one-line criteria, one request at a time (the server answers
one at a time anyway): criterion by criterion, then example by example (the worker's order). llama.cpp keeps the
previous prompt's KV cache, so a request that shares the previous one's beginning (the system prompt and the pair's
texts) reads only what follows. ``--max-tokens`` keeps the answers short, so the figures are mostly prompt reading.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from critiq.data import load_pairs  # noqa: E402
from critiq.data.models import Criterion, Pair  # noqa: E402
from critiq.judge.cost import prompt_worker  # noqa: E402
from critiq.llm.config import ModelConfig  # noqa: E402
from critiq.llm.local import LocalServer  # noqa: E402
from critiq.prompts import Prompts  # noqa: E402

DESCRIPTIONS = [
    "Prefer the clearer code.",
    "Prefer the code that checks its inputs and reports bad values.",
    "Prefer the documented code.",
    "Prefer the shorter code that does the same.",
    "Prefer the code with names that say what they hold.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--criteria", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    pairs = [p for p in load_pairs(ROOT / "examples" / "data" / "code_pairs.jsonl") if isinstance(p, Pair)]
    warm, pairs = pairs[args.pairs], pairs[: args.pairs]
    criteria = [Criterion(name=f"c{i}", description=d) for i, d in enumerate(DESCRIPTIONS[: args.criteria])]
    worker = prompt_worker(ModelConfig(model="openai/x"), Prompts("en"), swap="none", seed=0)
    with LocalServer() as server:
        url = server.api_base + "/chat/completions"

        def ask(pair: Pair, criterion: Criterion) -> float:
            body = {"model": "x", "messages": worker.messages(pair, criterion, False), "temperature": 0}
            started = time.perf_counter()
            httpx.post(url, json=body | {"max_tokens": args.max_tokens}, timeout=600).raise_for_status()
            return time.perf_counter() - started

        ask(warm, criteria[0])  # the server's first request, and a prompt no order below shares
        orders = {
            "criterion by criterion": [(p, c) for c in criteria for p in pairs],
            "example by example (the worker's)": [(p, c) for p in pairs for c in criteria],
        }
        for name, cells in orders.items():
            seconds = [ask(p, c) for p, c in cells]
            print(f"{name}: {sum(seconds):.1f} s for {len(cells)} requests ({', '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
