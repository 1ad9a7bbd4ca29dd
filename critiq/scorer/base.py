"""The ``Scorer`` interface: fit on preference pairs, score texts, save and load by manifest."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from critiq.errors import CritiqError, InputError, OutputExists
from critiq.io import atomic_write_json, replace_dir, staging_dir
from critiq.rundir.scorer import MANIFEST, MANIFEST_VERSION, FitReport, ScorerManifest
from critiq.scorer.data import PairLike, Preferences, split, to_preferences
from critiq.scorer.length import LengthAdjust
from critiq.stats import wilson_interval

logger = logging.getLogger(__name__)


def pairwise_accuracy(chosen_scores: np.ndarray, rejected_scores: np.ndarray) -> tuple[int, int]:
    """(correct, n): a pair counts as correct when the chosen text scores strictly higher."""
    return int(np.sum(chosen_scores > rejected_scores)), len(chosen_scores)


class Scorer(ABC):
    """A text-quality scorer distilled from pairwise preferences with a Bradley–Terry loss."""

    kind: ClassVar[str]
    fit_report: FitReport | None = None
    length_weight: float | None = None  # the length covariate's weight of the last length-controlled fit
    length_adjust: LengthAdjust | None = None  # what length control takes out of the scores

    def fit(
        self, pairs: Iterable[PairLike], *, valid_fraction: float = 0.1, seed: int = 0, length_control: bool = False
    ) -> FitReport:
        """Train on ``pairs`` (chosen = the preferred side), holding out ``valid_fraction`` for accuracy.

        ``length_control`` fits text length as a separate covariate and scores without it, for labels that reward
        length; the report's length figures say how much the scores follow length either way.
        """
        from critiq.scorer.length import length_report

        prefs = to_preferences(pairs)
        train, valid = split(prefs, valid_fraction, seed)
        if prefs.skipped:
            logger.info("skipped %d pairs without a preference", prefs.skipped)
        start = time.perf_counter()
        self.length_weight = None
        self.length_adjust = None
        self._fit(train, seed=seed, length_control=length_control)
        if length_control:
            self.length_adjust = LengthAdjust.fit(self._score, train.chosen + train.rejected)
        seconds = time.perf_counter() - start
        accuracy: float | None = None
        interval: tuple[float, float] | None = None
        if len(valid):
            correct, n = pairwise_accuracy(self.score(valid.chosen), self.score(valid.rejected))
            accuracy, interval = correct / n, wilson_interval(correct, n)
        self.fit_report = FitReport(
            kind=self.kind,
            n_train=len(train),
            n_valid=len(valid),
            skipped=prefs.skipped,
            accuracy=accuracy,
            interval=interval,
            train_seconds=round(seconds, 3),
            length_control=length_control,
            length_weight=self.length_weight,
            **length_report(self.score, valid),
        )
        logger.info("%s", self.fit_report.summary())
        return self.fit_report

    @abstractmethod
    def _fit(self, train: Preferences, *, seed: int, length_control: bool = False) -> None:
        """Fit the model on the training preferences; with ``length_control``, set ``length_weight``."""

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 score per text; higher means better (without length, for a length-controlled scorer)."""
        scores = self._score(texts)
        if self.length_adjust is not None and len(scores):
            scores = (scores - self.length_adjust.slope * self.length_adjust.standardise(texts)).astype(np.float32)
        return scores

    @abstractmethod
    def _score(self, texts: Sequence[str]) -> np.ndarray:
        """The model's float32 score of each text."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable options that rebuild this scorer (stored in the manifest)."""

    @abstractmethod
    def _save(self, directory: Path) -> None:
        """Write the model files (the manifest is written after, by ``save``)."""

    @classmethod
    @abstractmethod
    def _load(cls, directory: Path, config: dict[str, Any]) -> Scorer:
        """Rebuild a trained scorer from ``directory``."""

    @property
    @abstractmethod
    def is_fitted(self) -> bool:
        """Whether ``score`` can be called."""

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise CritiqError(f"the {self.kind} scorer is not trained: call fit() or Scorer.load()")

    def save(self, directory: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Save to ``directory``: built in a folder beside it and renamed into place, so a kill leaves the old
        scorer or the new one. An existing ``directory`` is replaced only with ``force=True``."""
        self._check_fitted()
        path = Path(directory)
        if path.exists() and not force and (not path.is_dir() or any(path.iterdir())):
            raise OutputExists(str(path))
        if path.exists() and not path.is_dir():
            raise InputError("exists and is not a folder", source=str(path))
        staged = staging_dir(path)
        try:
            self._save(staged)
            manifest = ScorerManifest(
                kind=self.kind,
                version=MANIFEST_VERSION,
                config=self.config(),
                fit_report=self.fit_report,
                length_adjust=self.length_adjust.model_dump() if self.length_adjust else None,
            )
            atomic_write_json(staged / MANIFEST, manifest.model_dump(mode="json"))
            replace_dir(staged, path)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Scorer:
        """Load any saved scorer; the kind is read from ``scorer.json`` in ``directory``."""
        path = Path(directory)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise InputError(f"not a saved scorer (no {MANIFEST})", source=str(path))
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"unreadable manifest: {error}", source=str(manifest_path)) from error
        if not isinstance(manifest, dict) or "kind" not in manifest:
            raise InputError("manifest has no 'kind'", source=str(manifest_path))
        if manifest.get("version") != MANIFEST_VERSION:
            raise InputError(f"unsupported manifest version {manifest.get('version')!r}", source=str(manifest_path))
        scorer_cls = scorer_class(manifest["kind"])
        if cls is not Scorer and not issubclass(scorer_cls, cls):
            raise InputError(f"holds a {manifest['kind']} scorer, not a {cls.kind} one", source=str(path))
        parsed = ScorerManifest.model_validate(manifest)
        scorer = scorer_cls._load(path, dict(parsed.config or {}))
        scorer.fit_report = parsed.fit_report
        if parsed.length_adjust:
            scorer.length_adjust = LengthAdjust.model_validate(parsed.length_adjust)
        return scorer

    def as_map_fn(
        self, text_field: str = "text", score_field: str = "score"
    ) -> Callable[[dict[str, list[Any]]], dict[str, list[float]]]:
        """A function for ``datasets.Dataset.map(fn, batched=True)`` adding a ``score_field`` column."""

        def score_batch(batch: dict[str, list[Any]]) -> dict[str, list[float]]:
            if text_field not in batch:
                raise CritiqError(f"no field '{text_field}' in the batch (fields: {', '.join(batch)})")
            return {score_field: self.score(batch[text_field]).tolist()}

        return score_batch


SCORERS: dict[str, type[Scorer]] = {}

S = TypeVar("S", bound=type[Scorer])


def register(cls: S) -> S:
    """Class decorator: make a scorer available by its ``kind`` to ``make_scorer`` and ``Scorer.load``."""
    SCORERS[cls.kind] = cls
    return cls


def scorer_class(kind: str) -> type[Scorer]:
    """The registered class for ``kind`` (``-`` and ``_`` are interchangeable)."""
    key = kind.replace("-", "_")
    if key not in SCORERS:
        raise CritiqError(f"unknown scorer kind '{kind}'; choose from {', '.join(sorted(SCORERS))}")
    return SCORERS[key]


def make_scorer(kind: str, **options: Any) -> Scorer:
    """Build an untrained scorer of ``kind`` with ``options``."""
    scorer_cls = scorer_class(kind)
    try:
        return scorer_cls(**options)
    except (TypeError, ValueError) as error:
        raise CritiqError(f"bad option for the {kind} scorer: {error}") from error
