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
    """Cross-validated accuracy of a logistic regression on the per-criterion votes; ``None`` if data is too small."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.array([1 if g == "A" else 0 for g in gold])
    smallest = min(int(y.sum()), int(len(y) - y.sum()))
    folds = min(folds, smallest)
    if folds < 2 or matrix.shape[1] == 0:
        return None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(LogisticRegression(C=1.0, max_iter=1000), matrix, y, cv=splitter)
    return vote_stats(["A" if p == 1 else "B" for p in predicted], list(gold))
