"""The n-gram scorer's Bradley–Terry fit: critiq's numpy L-BFGS against scipy's L-BFGS-B on the same problem.

    python bench/lbfgs.py [--pairs 4000] [--repeats 3]

The problem is the one `critiq train-scorer` solves: the n-gram scorer's sparse features of synthetic pairs of
standard-library chunks (the chosen one has the larger share of comment lines, as in bench/scorer.py), with the
same objective, starting point, memory and tolerances. Prints the seconds (best of ``--repeats``), iterations, final
loss and training accuracy of each solver.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scorer import stdlib_documents, synthetic_pairs  # noqa: E402
from critiq.scorer import bt, ngram  # noqa: E402
from critiq.scorer.ngram import NgramScorer  # noqa: E402


def scipy_lbfgs(objective: Any, x0: np.ndarray, *, max_iter: int = 100, memory: int = 10, gtol: float = 1e-5,
                ftol: float = 1e-9) -> tuple[np.ndarray, float, int]:  # fmt: skip
    """scipy's L-BFGS-B (no bounds) with the numpy solver's signature and settings."""
    from scipy.optimize import minimize

    options = {"maxiter": max_iter, "maxcor": memory, "gtol": gtol, "ftol": ftol}
    result = minimize(objective, x0, jac=True, method="L-BFGS-B", options=options)
    return result.x, float(result.fun), int(result.nit)


def problem(n_pairs: int) -> dict[str, Any]:
    """The arguments the n-gram scorer passes to ``fit_linear_bt`` for ``n_pairs`` synthetic pairs."""
    captured: dict[str, Any] = {}
    real = ngram.fit_linear_bt

    def capture(matrix: Any, chosen: np.ndarray, rejected: np.ndarray, **options: Any) -> np.ndarray:
        captured.update(features=matrix, chosen=chosen, rejected=rejected, **options)
        return real(matrix, chosen, rejected, **options)

    docs = stdlib_documents(2 * n_pairs)
    ngram.fit_linear_bt = capture  # type: ignore[assignment]
    try:
        NgramScorer().fit(synthetic_pairs(docs, n_pairs), valid_fraction=0.0)
    finally:
        ngram.fit_linear_bt = real
    return captured


def run(name: str, solver: Any, args: dict[str, Any], repeats: int) -> None:
    calls: list[tuple[float, int]] = []
    real = bt.lbfgs

    def counted(objective: Any, x0: np.ndarray, **options: Any) -> tuple[np.ndarray, float, int]:
        x, value, iterations = solver(objective, x0, **options)
        calls.append((value, iterations))
        return x, value, iterations

    bt.lbfgs = counted
    try:
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            weights = bt.fit_linear_bt(**args)
            seconds.append(time.perf_counter() - start)
    finally:
        bt.lbfgs = real
    scores = np.asarray(args["features"] @ weights).ravel()
    accuracy = float(np.mean(scores[args["chosen"]] > scores[args["rejected"]]))
    loss, iterations = calls[-1]
    figures = f"{iterations:4d} iterations   loss {loss:10.2f}   train acc {accuracy:.3f}"
    print(f"  {name:<18} {min(seconds):6.2f} s   {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPU cores online, load {load:.2f}, python {platform.python_version()}")
    args = problem(options.pairs)
    features = args["features"]
    shape = f"{features.shape[0]} texts × {features.shape[1]} features, {features.nnz:,} non-zeros"
    print(f"{options.pairs} pairs: {shape}")
    run("numpy L-BFGS", bt.lbfgs, args, options.repeats)
    run("scipy L-BFGS-B", scipy_lbfgs, args, options.repeats)


if __name__ == "__main__":
    main()
