"""Selection: Gumbel top-k sampling ∝ exp(score / τ) under k, fraction and token budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from critiq.errors import CritiqError
from critiq.selection import select


def test_zero_temperature_is_top_k_with_ties_by_index() -> None:
    scores = np.array([0.5, 2.0, 2.0, -1.0, 3.0, 2.0])
    assert select(scores, top_k=4).tolist() == [4, 1, 2, 5]
    rng = np.random.default_rng(0)
    many = rng.normal(size=1000)
    chosen = select(many, top_k=50)
    assert chosen.tolist() == np.argsort(-many, kind="stable")[:50].tolist()


def test_top_k_larger_than_corpus_takes_everything() -> None:
    assert sorted(select([1.0, 2.0, 3.0], top_k=10).tolist()) == [0, 1, 2]
    assert select([], top_k=3).tolist() == []


def test_fraction_rounds_up() -> None:
    scores = np.arange(10, dtype=float)
    assert len(select(scores, fraction=0.25)) == 3
    assert len(select(scores, fraction=1.0)) == 10
    assert len(select(scores, fraction=0.3)) == 3
    assert set(select(scores, fraction=0.2).tolist()) == {9, 8}


def test_token_budget_stops_once_met() -> None:
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    counts = np.array([100, 50, 80, 10, 10])
    assert select(scores, tokens=150, token_counts=counts).tolist() == [0, 1]
    assert select(scores, tokens=151, token_counts=counts).tolist() == [0, 1, 2]
    assert select(scores, tokens=10_000, token_counts=counts).tolist() == [0, 1, 2, 3, 4]
    rng = np.random.default_rng(3)
    scores, counts = rng.normal(size=500), rng.integers(1, 400, size=500)
    for temperature in (0.0, 1.0):
        chosen = select(scores, tokens=20_000, token_counts=counts, temperature=temperature, seed=4)
        assert counts[chosen].sum() >= 20_000 > counts[chosen[:-1]].sum()


def test_seed_makes_sampling_reproducible() -> None:
    scores = np.random.default_rng(1).normal(size=300)
    first = select(scores, top_k=30, temperature=1.0, seed=7)
    assert np.array_equal(first, select(scores, top_k=30, temperature=1.0, seed=7))
    assert not np.array_equal(first, select(scores, top_k=30, temperature=1.0, seed=8))


def test_top_one_frequencies_follow_the_softmax() -> None:
    scores = np.array([0.0, 1.0, 2.0])
    temperature = 1.5
    draws = np.array([select(scores, top_k=1, temperature=temperature, seed=s)[0] for s in range(6000)])
    expected = np.exp(scores / temperature) / np.exp(scores / temperature).sum()
    observed = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(observed, expected, atol=0.025)


def test_high_temperature_is_near_uniform_and_low_is_greedy() -> None:
    scores = np.arange(1000, dtype=float) / 1000
    hot = [scores[select(scores, fraction=0.1, temperature=1e6, seed=s)].mean() for s in range(20)]
    assert abs(np.mean(hot) - scores.mean()) < 0.03
    cold = select(scores, fraction=0.1, temperature=1e-6, seed=0)
    assert set(cold.tolist()) == set(range(900, 1000))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_k": 0}, "`top_k` must be > 0"),
        ({"top_k": -3}, "`top_k` must be > 0"),
        ({"top_k": 2.5}, "`top_k` must be > 0"),
        ({"fraction": 0.0}, r"`fraction` must be in \(0, 1\]"),
        ({"fraction": 1.5}, r"`fraction` must be in \(0, 1\]"),
        ({"fraction": math.nan}, r"`fraction` must be in \(0, 1\]"),
        ({"tokens": 0, "token_counts": [1, 1, 1]}, "`tokens` must be > 0"),
        ({"tokens": 5}, "`tokens` needs token counts"),
        ({"tokens": 5, "token_counts": [1, 2]}, "got 2 token counts for 3 items"),
        ({"top_k": 1, "temperature": -0.1}, "`temperature` must be >= 0"),
        ({}, "choose exactly one of `top_k`, `fraction`, `tokens`$"),
        ({"top_k": 1, "fraction": 0.5}, r"choose exactly one .* \(got `top_k`, `fraction`\)"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(CritiqError, match=message):
        select([1.0, 2.0, 3.0], **options)  # type: ignore[arg-type]


def test_nan_scores_are_rejected() -> None:
    with pytest.raises(CritiqError, match="NaN"):
        select([1.0, math.nan], top_k=1)
