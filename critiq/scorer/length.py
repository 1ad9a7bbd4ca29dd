"""Length and the scorer: how much its scores follow text length, and length as a covariate to fit and drop.

A Bradley–Terry scorer trained on labels that reward length learns length. ``length_report`` measures it on the
held-out pairs: the Spearman correlation of scores with text length, and the accuracy on the pairs where the
shorter text won. Length control (as length-controlled win rates do) fits
``P(chosen ≻ rejected) = σ(f(chosen) − f(rejected) + β·(ℓ(chosen) − ℓ(rejected)))`` with ``ℓ`` the standardised
log length, and scores with ``f`` alone, less the linear trend in length ``f`` still has (:class:`LengthAdjust`;
``f`` can spell length with other features: n-gram counts, the share of distinct tokens...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict

import numpy as np
from pydantic import BaseModel

from critiq.scorer.data import Preferences


def log_length(texts: Sequence[str]) -> np.ndarray:
    """``log(1 + characters)`` of each text."""
    return np.log1p(np.fromiter((len(t) for t in texts), dtype=np.float64, count=len(texts)))


class LengthScale:
    """Standardises log length with the training texts' mean and spread."""

    def __init__(self, texts: Sequence[str]) -> None:
        values = log_length(texts)
        self.mean = float(values.mean()) if len(values) else 0.0
        self.scale = float(values.std()) if len(values) and values.std() > 1e-9 else 1.0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return ((log_length(texts) - self.mean) / self.scale).astype(np.float32)


class LengthAdjust(BaseModel):
    """What length control takes out of a scorer's scores: ``slope`` × standardised log length.

    After the fit with the covariate, what the model's scores still follow of length (their least-squares slope on
    the training texts' standardised log length) is subtracted, so the scores carry no linear trend in log length.
    """

    slope: float
    mean: float
    scale: float

    @classmethod
    def fit(cls, score: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> LengthAdjust:
        unique = list(dict.fromkeys(texts))
        scale = LengthScale(unique)
        lengths = scale(unique).astype(np.float64)
        scores = score(unique).astype(np.float64)
        spread = float(np.mean(lengths * lengths) - np.mean(lengths) ** 2)
        slope = float(np.mean(lengths * scores) - lengths.mean() * scores.mean()) / spread if spread > 1e-12 else 0.0
        return cls(slope=slope, mean=scale.mean, scale=scale.scale)

    def standardise(self, texts: Sequence[str]) -> np.ndarray:
        return ((log_length(texts) - self.mean) / self.scale).astype(np.float32)


def length_only_weight(train: Preferences, l2: float = 1e-3) -> float:
    """β of the one-covariate BT model ``σ(β·Δℓ)`` (standardised log length), by Newton's method."""
    scale = LengthScale(train.chosen + train.rejected)
    delta = (scale(train.chosen) - scale(train.rejected)).astype(np.float64)
    beta = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-beta * delta))
        grad = float(np.sum((p - 1.0) * delta)) + l2 * beta
        hess = float(np.sum(p * (1.0 - p) * delta * delta)) + l2
        step = grad / hess
        beta -= step
        if abs(step) < 1e-8:
            break
    return beta


class LengthFigures(TypedDict):
    length_spearman: float | None
    shorter_won_n: int
    shorter_won_accuracy: float | None
    longer_won_share: float | None


def length_report(score: Callable[[Sequence[str]], np.ndarray], valid: Preferences) -> LengthFigures:
    """Honesty figures on held-out pairs: Spearman(score, length), accuracy where the shorter text won, and the
    share of pairs the longer text won (how much the labels themselves reward length)."""
    from scipy.stats import spearmanr

    if not len(valid):
        return {"length_spearman": None, "shorter_won_n": 0, "shorter_won_accuracy": None, "longer_won_share": None}
    chosen, rejected = score(valid.chosen), score(valid.rejected)
    scores = np.concatenate([chosen, rejected])
    lengths = np.fromiter((len(t) for t in valid.chosen + valid.rejected), dtype=np.float64)
    rho = None
    if np.ptp(scores) > 0 and np.ptp(lengths) > 0:
        rho = float(spearmanr(scores, lengths).statistic)
    chosen_len = lengths[: len(valid)]
    rejected_len = lengths[len(valid) :]
    shorter = chosen_len < rejected_len
    differ = chosen_len != rejected_len
    correct = chosen > rejected
    return {
        "length_spearman": rho,
        "shorter_won_n": int(shorter.sum()),
        "shorter_won_accuracy": float(correct[shorter].mean()) if shorter.any() else None,
        "longer_won_share": float((chosen_len > rejected_len)[differ].mean()) if differ.any() else None,
    }
