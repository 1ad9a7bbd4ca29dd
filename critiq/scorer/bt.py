"""Linear Bradley–Terry fitting: minimise Σ −log σ(w·x_chosen − w·x_rejected) + l2/2 ‖w‖².

The model scores each distinct text once per step (``s = X w``) and compares pairs by index, so a
text shared by many pairs costs one row. With no intercept the loss is symmetric in the pair order,
so no random sign flips are needed. Solved with a small numpy L-BFGS on the columns that occur (faster than
scipy's here: see :func:`lbfgs`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _compress_columns(matrix: Any) -> tuple[Any, np.ndarray]:
    """Drop all-zero columns of a CSR matrix; returns the smaller matrix and the kept column ids."""
    from scipy import sparse

    used = np.zeros(matrix.shape[1], dtype=bool)
    used[matrix.indices] = True
    kept = np.flatnonzero(used)
    remap = np.cumsum(used, dtype=np.int64) - 1
    indices = remap[matrix.indices].astype(matrix.indices.dtype)
    small = sparse.csr_matrix((matrix.data, indices, matrix.indptr), shape=(matrix.shape[0], len(kept)))
    return small, kept


def _single_threaded_blas() -> AbstractContextManager[object]:
    """Vector dot products are memory-bound: threaded BLAS only adds spin-waits, badly so on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    limits: AbstractContextManager[object] = threadpool_limits(1, user_api="blas")
    return limits


def lbfgs(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    max_iter: int = 100,
    memory: int = 10,
    gtol: float = 1e-5,
    ftol: float = 1e-9,
) -> tuple[np.ndarray, float, int]:
    """Minimise a smooth convex ``objective`` (returning value and gradient) with L-BFGS + Armijo backtracking.

    Returns (x, f(x), iterations). Kept over scipy's L-BFGS-B for its speed on this problem, with the same result:
    ``python bench/lbfgs.py`` (the n-gram scorer's fit, 100 iterations each, best of 3, 2 shared cores under load
    3–4) took 3.96 s against scipy's 6.54 s on 4,000 pairs (5,019 texts, 4.6 M non-zeros; losses 1209.38 and
    1209.42, the same training accuracy) and 2.79 s against 4.73 s on 2,000 pairs.
    """
    x = x0.astype(np.float64)
    value, grad = objective(x)
    history: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    iterations = 0
    while iterations < max_iter and float(np.max(np.abs(grad), initial=0.0)) > gtol:
        iterations += 1
        direction = -_two_loop(grad, history)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            history.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0 if history else min(1.0, 1.0 / max(float(np.linalg.norm(grad)), 1e-12))
        for _ in range(40):
            candidate = x + step * direction
            new_value, new_grad = objective(candidate)
            if new_value <= value + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s_vec, y_vec = candidate - x, new_grad - grad
        curvature = float(s_vec @ y_vec)
        if curvature > 1e-12:
            history.append((s_vec, y_vec, 1.0 / curvature))
        decrease = value - new_value
        x, value, grad = candidate, new_value, new_grad
        if decrease <= ftol * max(abs(value), 1.0):
            break
    return x, value, iterations


def _two_loop(grad: np.ndarray, history: deque[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """The L-BFGS approximation of H⁻¹ · grad."""
    q = grad.copy()
    alphas = []
    for s_vec, y_vec, rho in reversed(history):
        alpha = rho * float(s_vec @ q)
        q -= alpha * y_vec
        alphas.append(alpha)
    if history:
        s_vec, y_vec, _ = history[-1]
        q *= float(s_vec @ y_vec) / float(y_vec @ y_vec)
    for (s_vec, y_vec, rho), alpha in zip(history, reversed(alphas), strict=True):
        beta = rho * float(y_vec @ q)
        q += (alpha - beta) * s_vec
    result: np.ndarray = q
    return result


def fit_linear_bt(
    features: Any,
    chosen: np.ndarray,
    rejected: np.ndarray,
    *,
    l2: float | np.ndarray = 1.0,
    max_iter: int = 100,
    tol: float = 1e-5,
) -> np.ndarray:
    """Float32 weights ``w`` such that ``features[chosen[i]] @ w > features[rejected[i]] @ w`` as often as possible.

    ``features`` has one row per distinct text (dense array or scipy CSR); ``chosen``/``rejected`` index rows.
    ``l2`` is one penalty for every weight, or one per column (a covariate can be penalised less).
    """
    n_texts, d = features.shape
    weights = np.zeros(d, dtype=np.float32)
    if len(chosen) == 0:
        return weights
    if hasattr(features, "tocsr"):
        matrix, kept = _compress_columns(features.tocsr().astype(np.float32))
        transposed = matrix.T.tocsr()
    else:
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        kept = np.arange(d)
        transposed = matrix.T
    penalty = np.asarray(l2, dtype=np.float64)[kept] if np.ndim(l2) else float(l2)

    def objective(w64: np.ndarray) -> tuple[float, np.ndarray]:
        scores = np.asarray(matrix @ w64.astype(np.float32)).ravel().astype(np.float64)
        margin = scores[chosen] - scores[rejected]
        loss = float(np.logaddexp(0.0, -margin).sum())
        dmargin = -np.exp(-np.logaddexp(0.0, margin))  # d(−log σ(m))/dm = −σ(−m)
        dscores = np.bincount(chosen, dmargin, minlength=n_texts) - np.bincount(rejected, dmargin, minlength=n_texts)
        grad = np.asarray(transposed @ dscores.astype(np.float32)).ravel().astype(np.float64) + penalty * w64
        return loss + 0.5 * float(np.sum(penalty * w64 * w64)), grad

    with _single_threaded_blas():
        solution, loss, iterations = lbfgs(objective, np.zeros(matrix.shape[1]), max_iter=max_iter, gtol=tol)
    logger.debug(
        "BT fit: %d pairs, %d/%d features, %d iterations, loss %.4f", len(chosen), len(kept), d, iterations, loss
    )
    weights[kept] = solution.astype(np.float32)
    return weights
