"""Benchmark the scorers: scoring throughput, training time, and accuracy on the human dev pairs.

    python bench/scorer.py [--quick] [--skip-encoder] [--skip-fasttext]

Throughput and training time use ~2,000-character chunks of the Python standard library's sources;
training pairs are synthetic, labelled by a known feature (the share of comment lines). The n-gram scorer's
throughput is measured beside fastText's (the ``fasttext-numpy2`` wheel, supervised, the same n-gram orders: words,
word bigrams, character 4-grams; 10 hidden units as in the fastText paper) on the same documents in the same process,
and both are trained on the same pairs and tested on the same held-out ones. Accuracy uses
../shared/data/dev_pairs.jsonl with 5-fold cross-validation grouped by prompt, beside the longer-text-wins baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from critiq.errors import CritiqError  # noqa: E402
from critiq.scorer import Scorer, make_scorer  # noqa: E402
from critiq.scorer.data import split, to_preferences  # noqa: E402
from critiq.stats import wilson_interval  # noqa: E402

DEV_PAIRS = ROOT.parent / "shared" / "data" / "dev_pairs.jsonl"


def stdlib_documents(limit: int, size: int = 2000) -> list[str]:
    """Chunks of about ``size`` characters cut from the standard library's .py files, in path order."""
    docs: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for start in range(0, len(text) - size // 2, size):
            docs.append(text[start : start + size])
            if len(docs) >= limit:
                return docs
    return docs


def comment_share(text: str) -> float:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return sum(line.startswith("#") for line in lines) / max(len(lines), 1)


def synthetic_pairs(docs: list[str], n: int, seed: int = 0) -> list[dict[str, str]]:
    """Pairs of distinct documents; the one with the larger share of comment lines is chosen."""
    rng = np.random.default_rng(seed)
    share = np.array([comment_share(d) for d in docs])
    pairs: list[dict[str, str]] = []
    while len(pairs) < n:
        i, j = rng.integers(0, len(docs), size=2)
        if share[i] != share[j]:
            win, lose = (i, j) if share[i] > share[j] else (j, i)
            pairs.append({"chosen": docs[win], "rejected": docs[lose]})
    return pairs


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


_WORKER: Scorer | None = None


def _load_worker(directory: str) -> None:
    global _WORKER
    _WORKER = Scorer.load(directory)


def _score_chunk(texts: list[str]) -> int:
    assert _WORKER is not None
    return len(_WORKER.score(texts))


def throughput(scorer: Scorer, docs: list[str], batch: int, processes: int = 1) -> float:
    """Documents per second, scoring ``docs`` in batches (``processes`` > 1: one loaded scorer per process)."""
    chunks = [docs[i : i + batch] for i in range(0, len(docs), batch)]
    scorer.score(chunks[0][:8])  # warm-up (lazy model loading)
    if processes == 1:
        return len(docs) / timed(lambda: [scorer.score(c) for c in chunks])
    with tempfile.TemporaryDirectory() as tmp:
        scorer.save(tmp)
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes, initializer=_load_worker, initargs=(tmp,)) as pool:
            pool.map(_score_chunk, [docs[:8]] * processes)
            return len(docs) / timed(lambda: pool.map(_score_chunk, chunks, chunksize=1))


def fasttext_line(text: str) -> str:
    """fastText reads one document a line, tokens separated by whitespace."""
    return " ".join(text.split())


def compare_fasttext(ngram: Scorer, pairs: list[dict[str, str]], docs: list[str], seed: int = 0) -> None:
    """fastText trained on the n-gram scorer's training pairs (chosen → label 1, rejected → label 0), tested on its
    held-out pairs, and its documents/s on ``docs`` beside the n-gram scorer's, in this process."""
    import pyarrow as pa

    try:
        import fasttext
    except ImportError:
        print("\n[fasttext] skipped: pip install fasttext-numpy2")
        return
    train, valid = split(to_preferences(pairs), 0.1, seed)  # the n-gram scorer's split (fit(valid_fraction=0.1))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as handle:
        for chosen, rejected in zip(train.chosen, train.rejected, strict=True):
            handle.write(f"__label__1 {fasttext_line(chosen)}\n__label__0 {fasttext_line(rejected)}\n")
    start = time.perf_counter()
    for lr in (0.1, 0.05, 0.02):  # fastText's hogwild SGD can diverge ("Encountered NaN"): a smaller step then
        try:
            model = fasttext.train_supervised(
                handle.name, wordNgrams=2, minn=4, maxn=4, dim=10, epoch=5, lr=lr, bucket=3 << 18, thread=2, verbose=0
            )
            break
        except RuntimeError as error:
            print(f"  fasttext lr {lr}: {error}")
    seconds = time.perf_counter() - start
    os.unlink(handle.name)

    def positive(texts: list[str]) -> np.ndarray:
        labels, probs = model.predict([fasttext_line(t) for t in texts], k=2)
        return np.array([p[list(ls).index("__label__1")] for ls, p in zip(labels, probs, strict=True)])

    correct = int(np.sum(positive(valid.chosen) > positive(valid.rejected)))
    ours = int(np.sum(ngram.score(valid.chosen) > ngram.score(valid.rejected)))
    print(f"\n[fasttext] supervised, words + word bigrams + char 4-grams, dim 10: trained in {seconds:.1f}s")
    report_accuracy("held-out: fasttext", correct, len(valid))
    report_accuracy("held-out: ngram", ours, len(valid))
    lines = [fasttext_line(d) for d in docs]  # fastText's input prepared outside its timing
    column = pa.array(docs, type=pa.string())
    batch = 1024
    ngram.score(docs[:8])
    spent = {"fasttext": 0.0, "ngram, list of str": 0.0, "ngram, Arrow column": 0.0}
    for start in range(0, len(docs), batch):  # interleaved batch by batch: the machine's load moves
        part, text_part, arrow_part = (
            lines[start : start + batch],
            docs[start : start + batch],
            column.slice(start, batch),
        )
        spent["fasttext"] += timed(lambda p=part: model.predict(p, k=1))
        spent["ngram, list of str"] += timed(lambda t=text_part: ngram.score(t))
        spent["ngram, Arrow column"] += timed(lambda a=arrow_part: ngram.score_arrow(a))  # type: ignore[attr-defined]
    print(f"  scoring {len(docs)} documents in this process, batches of {batch}, interleaved:")
    for name, took in spent.items():
        print(f"  {name:<22} {len(docs) / took:>9,.0f} documents/s  ({spent['fasttext'] / took:.2f}× fastText's rate)")


def load_dev_pairs() -> list[dict[str, str]] | None:
    if not DEV_PAIRS.is_file():
        return None
    return [json.loads(line) for line in DEV_PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]


def grouped_folds(rows: list[dict[str, str]], k: int, seed: int = 0) -> list[np.ndarray]:
    """k folds of row indices; pairs sharing a prompt stay in one fold (no prompt leaks across folds)."""
    prompts = [row["a"].split("\n\nResponse:")[0] for row in rows]
    groups = {p: g for g, p in enumerate(dict.fromkeys(prompts))}
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of_group = {g: int(np.where(order == g)[0][0]) % k for g in range(len(groups))}
    fold = np.array([fold_of_group[groups[p]] for p in prompts])
    return [np.flatnonzero(fold == f) for f in range(k)]


def cross_validate(rows: list[dict[str, str]], kind: str, k: int = 5, **options: object) -> tuple[int, int, float]:
    """(correct, n, seconds) of ``kind`` trained on k−1 folds and tested on the held-out fold."""
    correct, total, seconds = 0, 0, 0.0
    for test in grouped_folds(rows, k):
        train = [rows[i] for i in range(len(rows)) if i not in set(test.tolist())]
        scorer = make_scorer(kind, **options)
        seconds += timed(lambda s=scorer, t=train: s.fit(t, valid_fraction=0.0))
        a = scorer.score([rows[i]["a"] for i in test])
        b = scorer.score([rows[i]["b"] for i in test])
        correct += int(np.sum((a > b) == np.array([rows[i]["preferred"] == "a" for i in test])))
        total += len(test)
    return correct, total, seconds


def cross_validate_encoder(rows: list[dict[str, str]], k: int = 5) -> tuple[int, int, float]:
    """Like ``cross_validate`` for the frozen encoder, embedding every text once (the encoder does not change)."""
    from critiq.scorer.bt import fit_linear_bt

    encoder = make_scorer("encoder")
    texts = list(dict.fromkeys(t for row in rows for t in (row["a"], row["b"])))
    index = {t: i for i, t in enumerate(texts)}
    start = time.perf_counter()
    embeddings = encoder.embed(texts)
    correct, total = 0, 0
    for test in grouped_folds(rows, k):
        held_out = set(test.tolist())
        train = [row for i, row in enumerate(rows) if i not in held_out]
        chosen = np.array([index[r["a"] if r["preferred"] == "a" else r["b"]] for r in train])
        rejected = np.array([index[r["b"] if r["preferred"] == "a" else r["a"]] for r in train])
        head = fit_linear_bt(embeddings, chosen, rejected, l2=encoder.l2)
        for i in test:
            row = rows[i]
            a_wins = embeddings[index[row["a"]]] @ head > embeddings[index[row["b"]]] @ head
            correct += int(a_wins == (row["preferred"] == "a"))
            total += 1
    return correct, total, time.perf_counter() - start


def report_accuracy(name: str, correct: int, n: int, extra: str = "") -> None:
    lo, hi = wilson_interval(correct, n)
    print(f"  {name:<28} {correct / n:.3f}  [{lo:.3f}, {hi:.3f}]  ({correct}/{n}){extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller corpora and pair sets")
    parser.add_argument("--skip-encoder", action="store_true", help="leave out the (slow on CPU) encoder scorer")
    parser.add_argument("--skip-fasttext", action="store_true", help="leave out the fastText comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    n_docs = 5_000 if args.quick else 40_000
    n_train = 5_000 if args.quick else 25_000
    n_pairs = round(n_train / 0.9)  # 10% is held out for the accuracy figure
    n_encoder_docs = 64 if args.quick else 256
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cores} CPU cores usable ({os.cpu_count()} online), {platform.processor() or platform.machine()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")

    pool = 5_000 if args.quick else 20_000  # the documents the training pairs are drawn from (as in earlier runs)
    docs = stdlib_documents(max(n_docs, pool, 2 * n_pairs // 3))
    mean_chars = np.mean([len(d) for d in docs[:n_docs]])
    print(f"\ncorpus: {len(docs)} stdlib chunks, {mean_chars:.0f} characters on average")

    print("\n[ngram] training on synthetic pairs (chosen = larger share of comment lines)")
    pairs = synthetic_pairs(docs[: max(pool, 2 * n_pairs // 3)], n_pairs)
    ngram = make_scorer("ngram")
    report = ngram.fit(pairs, valid_fraction=0.1)
    lo, hi = report.interval or (0.0, 1.0)
    print(
        f"  {report.n_train} train pairs: {report.train_seconds:.1f}s (features + L-BFGS); "
        f"held-out accuracy {report.accuracy:.3f} [{lo:.3f}, {hi:.3f}] on {report.n_valid} pairs"
    )
    print(f"\n[ngram] scoring {n_docs} documents")
    for processes in (1, 2):
        rate = throughput(ngram, docs[:n_docs], batch=1024, processes=processes)
        print(f"  {processes} process{'es' if processes > 1 else ''}: {rate:,.0f} documents/s")
    if not args.skip_fasttext:
        compare_fasttext(ngram, pairs, docs[:n_docs])

    encoder = None
    if not args.skip_encoder:
        try:
            encoder = make_scorer("encoder")
            small = pairs[: n_encoder_docs // 2]
            seconds = timed(lambda: encoder.fit(small, valid_fraction=0.0))
            print("\n[encoder] all-MiniLM-L6-v2 (max 256 tokens), frozen embeddings + linear BT head")
            print(f"  training on {len(small)} pairs: {seconds:.1f}s (embedding-bound)")
            rate = throughput(encoder, docs[:n_encoder_docs], batch=32)
            print(f"  scoring: {rate:,.1f} documents/s")
            print(f"  → 25k pairs (≤50k texts) would take about {50_000 / rate / 60:.0f} min to embed on this machine")
        except CritiqError as error:  # a missing optional dependency is reported, not fatal
            print(f"\n[encoder] skipped: {error}")
            encoder = None

    print("\n[dev pairs] 5-fold cross-validation grouped by prompt, accuracy with 95% Wilson interval")
    rows = load_dev_pairs()
    if rows is None:
        print(f"  skipped: {DEV_PAIRS} is absent")
        return
    longer = sum((len(r["a"]) > len(r["b"])) == (r["preferred"] == "a") for r in rows)
    report_accuracy("longer text wins (baseline)", longer, len(rows))
    correct, n, seconds = cross_validate(rows, "ngram")
    report_accuracy("ngram", correct, n, f"  {seconds:.1f}s training in all")
    if encoder is not None:
        correct, n, seconds = cross_validate_encoder(rows)
        report_accuracy("encoder (frozen + BT head)", correct, n, f"  {seconds:.1f}s: embeddings once + 5 heads")
    by_domain: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_domain.setdefault(row.get("domain") or "?", []).append(row)
    print(
        "  longer-text baseline by domain: "
        + ", ".join(
            f"{d} {sum((len(r['a']) > len(r['b'])) == (r['preferred'] == 'a') for r in rs) / len(rs):.2f} (n={len(rs)})"
            for d, rs in sorted(by_domain.items())
        )
    )


if __name__ == "__main__":
    main()
