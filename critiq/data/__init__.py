"""Data model and loaders."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from critiq.data.loaders import iter_examples, load_examples, load_pairs
    from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair, Point

_EXPORTS = {
    "iter_examples": "critiq.data.loaders",
    "load_examples": "critiq.data.loaders",
    "load_pairs": "critiq.data.loaders",
    "Criterion": "critiq.data.models",
    "CriterionStats": "critiq.data.models",
    "Example": "critiq.data.models",
    "Judgment": "critiq.data.models",
    "Pair": "critiq.data.models",
    "Point": "critiq.data.models",
}
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # imported on first use: the CLI's start-up does not pay for what it does not run
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
