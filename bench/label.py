"""Does active selection help? A simulated person labels 30 pairs picked at random or by `critiq label`'s selector.

    python bench/label.py [--pairs PATH] [--seeds 10] [--labels 30] [--random-first 8]

The person is the human labels of ../shared/data/dev_pairs.jsonl: the candidates are those pairs (their texts are
the corpus; a drawn pair without a human label could not be answered), and the simulated person answers each pick
as its label says. Both strategies start from the same seeded random order, so their first ``--random-first`` picks
are the same; then "active" takes the pair the n-gram Bradley–Terry scorer, retrained on the labels so far, is least
sure about (no two picks in a row from the same prompt), and "random" goes on in random order.

Two protocols, each over ``--seeds`` seeds: "remaining" trains an n-gram scorer on the 30 labels and measures its
accuracy on every pair not picked (as asked); "held-out" first sets aside a third of the prompts as a test set, picks
from the rest and measures on the test set (the same pairs for both strategies, so the comparison is paired).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from critiq.data import load_pairs  # noqa: E402
from critiq.data.models import Pair  # noqa: E402
from critiq.label import Candidate, ScorerRanker, Selector, Text  # noqa: E402
from critiq.scorer.ngram import NgramScorer  # noqa: E402

DEV_PAIRS = ROOT.parent / "shared" / "data" / "dev_pairs.jsonl"
if not DEV_PAIRS.exists():
    DEV_PAIRS = Path("/work/shared/data/dev_pairs.jsonl")
SEPARATOR = "\n\nResponse:\n"


def split_text(text: str, index: str) -> Text:
    """A dev-pair text as the corpus row it came from: ``Prompt:\\n...\\n\\nResponse:\\n...`` → prompt and response."""
    if text.startswith("Prompt:\n") and SEPARATOR in text:
        prompt, body = text[len("Prompt:\n") :].split(SEPARATOR, 1)
        return Text(index, body, prompt)
    return Text(index, text)


def candidates(pairs: Sequence[Pair]) -> list[tuple[Candidate, Pair]]:
    return [(Candidate(split_text(p.a, f"{p.id}:a"), split_text(p.b, f"{p.id}:b")), p) for p in pairs]


def accuracy(train: Sequence[Pair], test: Sequence[Pair], seed: int) -> float:
    scorer = NgramScorer()
    scorer.fit(train, valid_fraction=0.0, seed=seed)
    a = scorer.score([p.a for p in test])
    b = scorer.score([p.b for p in test])
    return sum((x > y) == (p.preferred == "a") and x != y for x, y, p in zip(a, b, test, strict=True)) / len(test)


def simulate(
    pool: list[tuple[Candidate, Pair]], *, active: bool, labels: int, random_first: int, seed: int, timings: list[float]
) -> list[Pair]:
    """The labelled pairs after ``labels`` picks."""
    order = list(pool)
    random.Random(seed).shuffle(order)
    gold = {c.id: p for c, p in order}
    available = [c for c, _ in order]
    selector = Selector(ScorerRanker(seed=seed) if active else None, random_first=random_first, pool_size=200)
    picked: list[Pair] = []
    last: frozenset[str] = frozenset()
    for _ in range(labels):
        start = time.perf_counter()
        choice = asyncio.run(selector.choose(available, picked, last))
        if active and len(picked) >= random_first:
            timings.append(time.perf_counter() - start)
        assert choice is not None
        candidate, _ = choice
        available.remove(candidate)
        last = candidate.prompts
        human = gold[candidate.id]
        picked.append(Pair(id=human.id, a=human.a, b=human.b, preferred=human.preferred))
    return picked


def held_out_split(pairs: Sequence[Pair], seed: int) -> tuple[list[Pair], list[Pair]]:
    """A third of the prompts (and every pair on them) as the test set."""
    prompts = sorted({split_text(p.a, "").prompt or p.a for p in pairs})
    random.Random(10_000 + seed).shuffle(prompts)
    test_prompts = set(prompts[: len(prompts) // 3])
    test = [p for p in pairs if (split_text(p.a, "").prompt or p.a) in test_prompts]
    return [p for p in pairs if p not in test], test


def describe(name: str, values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return (
        f"{name:<22} mean {statistics.mean(values):.3f}  sd {spread:.3f}  min {min(values):.3f}  max {max(values):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=DEV_PAIRS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--labels", type=int, default=30)
    parser.add_argument("--random-first", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pairs = load_pairs(args.pairs, require_labels=True)
    print(
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), load "
        f"{os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    print(
        f"{len(pairs)} human pairs from {args.pairs}; {args.labels} labels, {args.random_first} random first, "
        f"{args.seeds} seeds"
    )
    timings: list[float] = []
    for protocol in ("remaining", "held-out"):
        results: dict[str, list[float]] = {"random": [], "active": []}
        for seed in range(args.seeds):
            if protocol == "remaining":
                pool, test = pairs, None
            else:
                pool, test = held_out_split(pairs, seed)
            for name in results:
                picked = simulate(
                    candidates(pool),
                    active=name == "active",
                    labels=args.labels,
                    random_first=args.random_first,
                    seed=seed,
                    timings=timings,
                )
                ids = {p.id for p in picked}
                evaluation = test if test is not None else [p for p in pairs if p.id not in ids]
                results[name].append(accuracy(picked, evaluation, seed))
        size = "every unpicked pair" if protocol == "remaining" else "a third of the prompts held out"
        print(f"\n{protocol} ({size}):")
        for name, values in results.items():
            print("  " + describe(name, values))
        gains = [a - r for a, r in zip(results["active"], results["random"], strict=True)]
        wins = sum(g > 0 for g in gains)
        print("  " + describe("active - random", gains) + f"  (active better on {wins}/{len(gains)} seeds)")
    print(
        f"\nactive pick (retrain on the labels so far + rank up to 200 candidates): "
        f"mean {statistics.mean(timings):.3f}s, max {max(timings):.3f}s over {len(timings)} picks"
    )


if __name__ == "__main__":
    main()
