"""Linear Bradley–Terry fitting: minimise Σ −log σ(w·x_chosen − w·x_rejected) + l2/2 ‖w‖².

The model scores each distinct text once per step (``s = X w``) and compares pairs by index, so a
text shared by many pairs costs one row. With no intercept the loss is symmetric in the pair order,
so no random sign flips are needed. Solved with scipy's L-BFGS on the columns that occur.
"""

from __future__ import annotations

import logging
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


def fit_linear_bt(
    features: Any,
    chosen: np.ndarray,
    rejected: np.ndarray,
    *,
    l2: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-5,
) -> np.ndarray:
    """Float32 weights ``w`` such that ``features[chosen[i]] @ w > features[rejected[i]] @ w`` as often as possible.

    ``features`` has one row per distinct text (dense array or scipy CSR); ``chosen``/``rejected`` index rows.
    """
    from scipy.optimize import minimize

    n_texts, d = features.shape
    weights = np.zeros(d, dtype=np.float32)
    if len(chosen) == 0:
        return weights
    sparse_input = hasattr(features, "tocsr")
    if sparse_input:
        matrix, kept = _compress_columns(features.tocsr().astype(np.float32))
        transposed = matrix.T.tocsr()
    else:
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        kept = np.arange(d)
        transposed = matrix.T

    def objective(w64: np.ndarray) -> tuple[float, np.ndarray]:
        scores = np.asarray(matrix @ w64.astype(np.float32)).ravel().astype(np.float64)
        margin = scores[chosen] - scores[rejected]
        loss = float(np.logaddexp(0.0, -margin).sum())
        dmargin = -np.exp(-np.logaddexp(0.0, margin))  # d(−log σ(m))/dm = −σ(−m)
        dscores = np.bincount(chosen, dmargin, minlength=n_texts) - np.bincount(rejected, dmargin, minlength=n_texts)
        grad = np.asarray(transposed @ dscores.astype(np.float32)).ravel().astype(np.float64) + l2 * w64
        return loss + 0.5 * l2 * float(w64 @ w64), grad

    result = minimize(
        objective,
        np.zeros(matrix.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-9},
    )
    logger.debug(
        "BT fit: %d pairs, %d/%d features, %d iterations, loss %.4f", len(chosen), len(kept), d, result.nit, result.fun
    )
    weights[kept] = result.x.astype(np.float32)
    return weights
