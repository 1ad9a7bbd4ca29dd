"""The final verdict on an example: a majority vote across criteria, or a vote weighted by logistic regression."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from critiq.data.models import CriterionStats
from critiq.judge.metrics import agreement

_SIGN = {"A": 1, "B": -1, "none": 0, None: 0}


def majority(verdicts: Sequence[str | None], margin: int = 0) -> str | None:
    """``A`` or ``B`` when that side has more than ``margin`` votes over the other; a tie gives no label."""
    a = sum(v == "A" for v in verdicts)
    b = sum(v == "B" for v in verdicts)
    if a - b > margin:
        return "A"
    if b - a > margin:
        return "B"
    return None


def vote_matrix(rows: Sequence[Sequence[str | None]]) -> np.ndarray:
    """Verdicts as +1 (A), -1 (B), 0 (none, or a failed request): one row per example, one column per criterion."""
    return np.array([[_SIGN[v] for v in row] for row in rows], dtype=np.float32).reshape(len(rows), -1)


def vote_stats(predicted: Sequence[str | None], gold: Sequence[str]) -> CriterionStats:
    """The vote's :func:`~critiq.judge.metrics.agreement`: a tie (no label) counts as wrong in ``accuracy``, as in the
    reference; ``decided_accuracy`` is over the examples that got a label."""
    decided = [(p, g) for p, g in zip(predicted, gold, strict=True) if p is not None]
    correct = sum(p == g for p, g in decided)
    return agreement(correct, len(decided), len(gold))


def weighted_vote_stats(
    matrix: np.ndarray, gold: Sequence[str], folds: int = 5, seed: int = 0
) -> CriterionStats | None:
    """Cross-validated accuracy of a logistic regression on the per-criterion votes; ``None`` if data is too small.

    The same predictions as scikit-learn's ``cross_val_predict(LogisticRegression(C=1.0), matrix, y,
    cv=StratifiedKFold(folds, shuffle=True, random_state=seed))`` (tested against it), without importing
    scikit-learn, which cost every ``critiq mine`` about 2.4 s of CPU.
    """
    y = np.array([1 if g == "A" else 0 for g in gold])
    smallest = min(int(y.sum()), int(len(y) - y.sum()))
    folds = min(folds, smallest)
    if folds < 2 or matrix.shape[1] == 0:
        return None
    x = np.asarray(matrix, dtype=np.float64)
    test_fold = stratified_folds(y, folds, seed)
    predicted = np.empty(len(y), dtype=int)
    for fold in range(folds):
        train = test_fold != fold
        coef, intercept = fit_logistic(x[train], y[train])
        predicted[~train] = (x[~train] @ coef + intercept > 0).astype(int)
    return vote_stats(["A" if p == 1 else "B" for p in predicted], list(gold))


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each example's test fold, as scikit-learn's ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` deals
    them: classes numbered in order of first appearance, the sorted class numbers dealt round-robin into folds,
    then each class's fold numbers shuffled."""
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    encoded = np.unique(first, return_inverse=True)[1][inverse]
    ordered = np.sort(encoded)
    allocation = np.asarray([np.bincount(ordered[i::folds], minlength=len(first)) for i in range(folds)])
    rng = np.random.RandomState(seed)
    test_fold = np.empty(len(y), dtype=int)
    for k in range(len(first)):
        for_class = np.arange(folds).repeat(allocation[:, k])
        rng.shuffle(for_class)
        test_fold[encoded == k] = for_class
    return test_fold


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0, steps: int = 100) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression as scikit-learn fits it (``C`` times the summed log loss plus half the
    squared norm of the coefficients; the intercept unpenalised), solved by Newton's method to convergence."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.eye(d + 1) / c
    penalty[d, d] = 0.0
    w = np.zeros(d + 1)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w[:d], float(w[d])
