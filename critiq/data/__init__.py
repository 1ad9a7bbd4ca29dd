"""Data model and loaders."""

from critiq.data.loaders import iter_examples, load_examples, load_pairs
from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair, Point

__all__ = [
    "Criterion",
    "CriterionStats",
    "Example",
    "Judgment",
    "Pair",
    "Point",
    "iter_examples",
    "load_examples",
    "load_pairs",
]
