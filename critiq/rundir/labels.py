"""Human labels in a run directory: ``pairs.jsonl`` from ``critiq label`` (and its ``pairs.skipped.jsonl``).

Each row is a critiq pair whose ``metadata`` says who labelled it, how long it took, the person's note and why the
page picked the pair (``random``, ``scorer unsure: 0.52``, ``criteria split 3–2 (of 5)``).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, Field

LABELS_FILE = "pairs.jsonl"
SKIPPED_FILE = "pairs.skipped.jsonl"
_DETAIL = re.compile(r"[:(]|\s\d")


class LabelMetadata(BaseModel):
    annotator: str | None = None
    seconds: float | None = None
    note: str = ""
    picked: str | None = None


class LabelRow(BaseModel):
    """What the report reads of one labelled (or skipped: ``preferred`` None) pair."""

    id: str
    preferred: str | None = None
    metadata: LabelMetadata = Field(default_factory=LabelMetadata)


class LabelSummary(BaseModel):
    """Labels counted by answer, annotator and why the pair was picked; seconds per label (median and mean)."""

    labels: int = 0
    skipped: int = 0
    answers: dict[str, int] = Field(default_factory=dict)
    annotators: dict[str, int] = Field(default_factory=dict)
    picked: dict[str, int] = Field(default_factory=dict)
    notes: int = 0
    median_seconds: float | None = None
    mean_seconds: float | None = None


def picked_kind(reason: str | None) -> str:
    """``scorer unsure: 0.52`` → ``scorer unsure``: the reason without its figures."""
    return _DETAIL.split(reason or "", maxsplit=1)[0].strip() or "unknown"


def summarise(labels: Iterable[LabelRow], skipped: Iterable[LabelRow]) -> LabelSummary:
    rows = list(labels)
    seconds = [row.metadata.seconds for row in rows if row.metadata.seconds is not None]
    return LabelSummary(
        labels=len(rows),
        skipped=sum(1 for _ in skipped),
        answers=dict(Counter(str(row.preferred) for row in rows).most_common()),
        annotators=dict(Counter(row.metadata.annotator or "unknown" for row in rows).most_common()),
        picked=dict(Counter(picked_kind(row.metadata.picked) for row in rows).most_common()),
        notes=sum(bool(row.metadata.note) for row in rows),
        median_seconds=statistics.median(seconds) if seconds else None,
        mean_seconds=statistics.fmean(seconds) if seconds else None,
    )
