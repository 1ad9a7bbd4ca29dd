"""Step 2 of the pipeline: annotate many examples with the workers and the final criteria."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from critiq.annotate.annotator import annotate
    from critiq.annotate.config import AnnotateConfig
    from critiq.annotate.pair_judge import PairJudge, PairOutcome, PerCriterionJudge
    from critiq.annotate.pairing import draw_pairs
    from critiq.annotate.records import record_for
    from critiq.rundir.annotation import AnnotationSummary

_EXPORTS = {
    "AnnotateConfig": "critiq.annotate.config",
    "AnnotationSummary": "critiq.rundir.annotation",
    "PairJudge": "critiq.annotate.pair_judge",
    "PairOutcome": "critiq.annotate.pair_judge",
    "PerCriterionJudge": "critiq.annotate.pair_judge",
    "annotate": "critiq.annotate.annotator",
    "draw_pairs": "critiq.annotate.pairing",
    "record_for": "critiq.annotate.records",
}
__all__ = [
    "AnnotateConfig",
    "AnnotationSummary",
    "PairJudge",
    "PairOutcome",
    "PerCriterionJudge",
    "annotate",
    "draw_pairs",
    "record_for",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # imported on first use: the CLI's start-up (AnnotateConfig's flags) pays for nothing else
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
