"""Scorers distilled from preference pairs: ``ngram`` (CPU default), ``encoder`` and ``reward_model``.

Importing this package never imports torch; the neural scorers import it when they are used.
"""

from critiq.rundir.scorer import FitReport
from critiq.scorer.base import SCORERS, Scorer, make_scorer, register, scorer_class
from critiq.scorer.encoder import EncoderScorer
from critiq.scorer.ngram import NgramScorer
from critiq.scorer.reward_model import RewardModelScorer

__all__ = [
    "SCORERS",
    "EncoderScorer",
    "FitReport",
    "NgramScorer",
    "RewardModelScorer",
    "Scorer",
    "make_scorer",
    "register",
    "scorer_class",
]
