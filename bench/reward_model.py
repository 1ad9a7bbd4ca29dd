"""Benchmark the reward-model scorer on the real SmolLM2-135M backbone, beside the n-gram scorer and "longer wins".

    python bench/reward_model.py [--pairs PATH] [--train-pairs 48] [--max-length 128] [--epochs 1]

One random split of the shared human-labelled dev pairs (``--valid-fraction`` held out, seed ``--seed``); every
scorer trains on the same ``--train-pairs`` of the rest and is measured on the same held-out pairs: accuracy with its
95% Wilson interval, the length diagnostics of ``FitReport`` (Spearman of score with length, accuracy where the
shorter text won, how often the labels chose the longer text), seconds per training pair and documents per second
scoring the held-out texts. The reward model is ``make_scorer("reward_model", model="embedded")``: the packaged GGUF
converted to HF safetensors, fine-tuned on the CPU as a one-label sequence classifier with the Bradley–Terry loss.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from critiq.data import load_pairs  # noqa: E402
from critiq.scorer import make_scorer  # noqa: E402
from critiq.scorer.base import pairwise_accuracy  # noqa: E402
from critiq.scorer.data import Preferences, split, to_preferences  # noqa: E402
from critiq.scorer.length import length_report  # noqa: E402
from critiq.stats import wilson_interval  # noqa: E402

DEV_PAIRS = ROOT.parent / "shared" / "data" / "dev_pairs.jsonl"


def measure(name: str, score: Any, train_seconds: float | None, n_train: int, valid: Preferences) -> dict[str, Any]:
    texts = valid.chosen + valid.rejected
    start = time.perf_counter()
    scores = np.asarray(score(texts), dtype=np.float64)
    seconds = time.perf_counter() - start
    chosen, rejected = scores[: len(valid)], scores[len(valid) :]
    correct, n = pairwise_accuracy(chosen, rejected)
    lo, hi = wilson_interval(correct, n)
    lookup = dict(zip(texts, scores, strict=False))
    figures = length_report(lambda batch: np.array([lookup[t] for t in batch]), valid)
    return {
        "scorer": name,
        "accuracy": correct / n,
        "interval": [round(lo, 3), round(hi, 3)],
        "n_valid": n,
        **figures,
        "train_s_per_pair": None if train_seconds is None else train_seconds / n_train,
        "score_docs_per_s": len(texts) / seconds if seconds > 0 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=Path(os.environ.get("CRITIQ_DEV_PAIRS", DEV_PAIRS)))
    parser.add_argument("--valid-fraction", type=float, default=0.3)
    parser.add_argument("--train-pairs", type=int, default=48, help="of the training side, for every scorer")
    parser.add_argument("--max-length", type=int, default=128, help="reward model: tokens per text")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.pairs.is_file():
        sys.exit(f"{args.pairs} is absent: pass --pairs (the shared dev pairs are not part of the repository)")

    prefs = to_preferences(load_pairs(args.pairs))
    train, valid = split(prefs, args.valid_fraction, args.seed)
    train = train.take(np.arange(min(args.train_pairs, len(train))))
    pairs = list(zip(train.chosen, train.rejected, strict=True))
    rows = [measure("longer wins", lambda texts: [float(len(t)) for t in texts], None, len(train), valid)]
    rows[0]["score_docs_per_s"] = None  # len() of a string: nothing to measure

    ngram = make_scorer("ngram")
    report = ngram.fit(pairs, valid_fraction=0.0, seed=args.seed)
    rows.append(measure("ngram", ngram.score, report.train_seconds, len(train), valid))

    reward = make_scorer(
        "reward_model",
        model="embedded",
        max_length=args.max_length,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        score_batch_size=16,
    )
    report = reward.fit(pairs, valid_fraction=0.0, seed=args.seed)
    rows.append(measure("reward_model (SmolLM2-135M)", reward.score, report.train_seconds, len(train), valid))

    setup = {
        "pairs": str(args.pairs),
        "train_pairs": len(train),
        "valid_pairs": len(valid),
        "max_length": args.max_length,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "torch_threads": __import__("torch").get_num_threads(),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(setup))
    print("| scorer | held-out accuracy (95% Wilson) | score–length Spearman | shorter won: acc (n) ", end="")
    print("| s / training pair | docs/s scoring |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        rho = "–" if row["length_spearman"] is None else f"{row['length_spearman']:+.2f}"
        short = "–" if row["shorter_won_accuracy"] is None else f"{row['shorter_won_accuracy']:.3f}"
        train_s = "–" if row["train_s_per_pair"] is None else f"{row['train_s_per_pair']:.3f}"
        docs_s = "–" if row["score_docs_per_s"] is None else f"{row['score_docs_per_s']:,.1f}"
        lo, hi = row["interval"]
        print(
            f"| {row['scorer']} | {row['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | {rho} "
            f"| {short} ({row['shorter_won_n']}) | {train_s} | {docs_s} |"
        )
    print(f"labels chose the longer text in {rows[0]['longer_won_share']:.0%} of the held-out pairs")
    if args.out is not None:
        args.out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
