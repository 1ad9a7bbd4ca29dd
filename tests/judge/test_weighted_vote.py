"""The weighted vote's logistic regression and folds against scikit-learn's, on random vote matrices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from critiq.judge.vote import fit_logistic, stratified_folds, weighted_vote_stats


def _cases(count: int) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    rng = np.random.default_rng(0)
    cases = []
    while len(cases) < count:
        n, d = int(rng.integers(6, 60)), int(rng.integers(1, 10))
        x = rng.choice([-1.0, 0.0, 1.0], size=(n, d))
        y = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(int)
        smallest = min(int(y.sum()), n - int(y.sum()))
        if smallest >= 2:
            cases.append((x, y, min(5, smallest), int(rng.integers(0, 100))))
    return cases


@pytest.mark.parametrize("case", range(40))
def test_folds_are_scikit_learns(case: int) -> None:
    x, y, folds, seed = _cases(40)[case]
    expected = np.empty(len(y), dtype=int)
    for fold, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)):
        expected[test] = fold
    assert stratified_folds(y, folds, seed).tolist() == expected.tolist()


def test_the_fit_is_scikit_learns_solved_to_convergence() -> None:
    for x, y, _, _ in _cases(40):
        coef, intercept = fit_logistic(x, y)
        reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(x, y)
        np.testing.assert_allclose(coef, reference.coef_[0], atol=1e-5)
        assert intercept == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_the_vote_predicts_from_the_held_out_folds() -> None:
    x, y, folds, seed = _cases(1)[0]
    gold = ["A" if label else "B" for label in y]
    stats = weighted_vote_stats(x, gold, folds=folds, seed=seed)
    assert stats is not None and stats.n == len(gold)
    test_fold = stratified_folds(y, min(folds, 5), seed)
    correct = 0
    for fold in range(folds):
        train = test_fold != fold
        coef, intercept = fit_logistic(x[train], y[train])
        correct += int(((x[~train] @ coef + intercept > 0).astype(int) == y[~train]).sum())
    assert stats.accuracy == correct / len(gold)
    assert weighted_vote_stats(x[:, :0], gold) is None  # no criteria
    assert weighted_vote_stats(x[:3], ["A", "B", "B"]) is None  # a class of one: no two folds
