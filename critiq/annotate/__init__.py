"""Step 2 of the pipeline: annotate many examples with the workers and the final criteria."""

from critiq.annotate.annotator import AnnotationSummary, annotate, record_for
from critiq.annotate.pairing import draw_pairs

__all__ = ["AnnotationSummary", "annotate", "draw_pairs", "record_for"]
