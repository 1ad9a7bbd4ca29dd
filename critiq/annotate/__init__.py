"""Step 2 of the pipeline: annotate many examples with the workers and the final criteria."""

from critiq.annotate.annotator import annotate
from critiq.annotate.pair_judge import PairJudge, PairOutcome, PerCriterionJudge
from critiq.annotate.pairing import draw_pairs
from critiq.annotate.records import record_for
from critiq.rundir.annotation import AnnotationSummary

__all__ = [
    "AnnotationSummary",
    "PairJudge",
    "PairOutcome",
    "PerCriterionJudge",
    "annotate",
    "draw_pairs",
    "record_for",
]
