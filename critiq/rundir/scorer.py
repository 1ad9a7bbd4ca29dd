"""``scorer/scorer.json``: a saved scorer's manifest and the report of its fit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from critiq.rundir.lenient import Maybe

MANIFEST = "scorer.json"
MANIFEST_VERSION = 1


class FitReport(BaseModel):
    """What a fit did: sizes, held-out pairwise accuracy with its 95% Wilson interval, time, and how much the scores
    follow text length on the held-out pairs (:mod:`critiq.scorer.length`).

    ``length_spearman``: Spearman correlation of the scores with text length; ``shorter_won_accuracy``: accuracy on
    the ``shorter_won_n`` pairs whose shorter text was preferred; ``longer_won_share``: how often the labels
    preferred the longer text. ``length_control``: length was fitted as a covariate (weight ``length_weight`` per
    standard deviation of log length) and left out of the scores.
    """

    kind: str
    n_train: int
    n_valid: int
    skipped: int = 0
    accuracy: float | None = None
    interval: tuple[float, float] | None = None
    train_seconds: float
    length_control: bool = False
    length_weight: float | None = None
    length_spearman: float | None = None
    shorter_won_n: int = 0
    shorter_won_accuracy: float | None = None
    longer_won_share: float | None = None

    def summary(self) -> str:
        if self.accuracy is None or self.interval is None:
            held_out = "no held-out pairs"
        else:
            lo, hi = self.interval
            held_out = f"held-out accuracy {self.accuracy:.3f} [{lo:.3f}, {hi:.3f}] on {self.n_valid} pairs"
        text = f"{self.kind}: trained on {self.n_train} pairs in {self.train_seconds:.1f}s, {held_out}"
        if self.length_spearman is not None:
            text += f"; score–length Spearman {self.length_spearman:+.2f}"
        if self.shorter_won_accuracy is not None:
            text += f", accuracy {self.shorter_won_accuracy:.3f} where the shorter text won ({self.shorter_won_n})"
        if self.length_control:
            text += "; length controlled"
        return text


class ScorerManifest(BaseModel):
    """``scorer/scorer.json``: the scorer's kind, its options (each kind's own), its fit report, and what length
    control takes out of the scores (:class:`critiq.scorer.length.LengthAdjust`, as a mapping)."""

    kind: str
    version: int | None = None
    config: Maybe[dict[str, Any]] = None
    fit_report: Maybe[FitReport] = None
    length_adjust: Maybe[dict[str, Any]] = None
