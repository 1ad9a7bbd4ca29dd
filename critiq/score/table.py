"""Scoring at the bottom: a scorer adds a ``score`` column to an Arrow table; what the scores add up to.

Every engine (:mod:`critiq.score.local`, :mod:`critiq.score.ray`) and pipeline bridge scores its batches here.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel

from critiq.scorer.base import Scorer

SCORE_FIELD = "score"


class ScoreSummary(BaseModel):
    """What ``score_corpus`` wrote."""

    out: str
    engine: str
    n: int
    seconds: float
    docs_per_second: float
    score_mean: float | None = None
    score_min: float | None = None
    score_max: float | None = None


class ScoreStats:
    """Count, sum, min and max of the scores seen so far (constant memory)."""

    def __init__(self) -> None:
        self.n, self.total = 0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, scores: np.ndarray) -> None:
        if len(scores):
            self.n += len(scores)
            self.total += float(np.sum(scores, dtype=np.float64))
            self.low = min(self.low, float(scores.min()))
            self.high = max(self.high, float(scores.max()))

    def summary(self, out: str | os.PathLike[str], engine: str, seconds: float) -> ScoreSummary:
        has = self.n > 0
        return ScoreSummary(
            out=os.fspath(out),
            engine=engine,
            n=self.n,
            seconds=round(seconds, 3),
            docs_per_second=round(self.n / seconds, 1) if seconds > 0 else 0.0,
            score_mean=self.total / self.n if has else None,
            score_min=self.low if has else None,
            score_max=self.high if has else None,
        )


def score_table(
    table: pa.Table, scorer: Scorer, text_field: str, max_chars: int | None, score_field: str = SCORE_FIELD
) -> pa.Table:
    """``table`` with a float32 ``score_field`` column (replacing one of that name)."""
    column = table.column(text_field)
    if max_chars:
        column = pc.utf8_slice_codeunits(column, 0, max_chars)
    from_arrow = getattr(scorer, "score_arrow", None)  # the n-gram scorer reads Arrow's buffers: no Python strings
    if from_arrow is not None and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        scores = pa.array(from_arrow(column), type=pa.float32())
    else:
        scores = pa.array(scorer.score(column.to_pylist()), type=pa.float32())
    if score_field in table.column_names:
        return table.set_column(table.column_names.index(score_field), score_field, scores)
    return table.append_column(score_field, scores)


def resolve_scorer(scorer: Scorer | str | os.PathLike[str]) -> Scorer:
    """``scorer`` itself, or the scorer saved in that directory."""
    return scorer if isinstance(scorer, Scorer) else Scorer.load(scorer)


def saved_in(scorer: Scorer | str | os.PathLike[str]) -> str | os.PathLike[str] | None:
    return None if isinstance(scorer, Scorer) else scorer


def score_details(summary: ScoreSummary) -> dict[str, Any]:
    if summary.score_mean is None:
        return {}
    return {"score mean / min / max": f"{summary.score_mean:.4f} / {summary.score_min:.4f} / {summary.score_max:.4f}"}


def describe_scores(fs: pafs.FileSystem, parts: list[str]) -> dict[str, Any]:
    """Score statistics of Parquet ``parts`` on ``fs`` for a dataset card."""
    stats = ScoreStats()
    for part in parts:
        column = pq.read_table(part, columns=[SCORE_FIELD], filesystem=fs).column(0)
        stats.add(column.to_numpy(zero_copy_only=False))
    return score_details(stats.summary("", "", 0.0))
