"""Typed views of the files a run directory holds, and a reader that never lets one bad file stop the report.

A pipeline run directory::

    RUN_DIR/mine/ (criteria.json, state.json, usage.json, iterations/)  labeled.jsonl  annotate.json
    RUN_DIR/scorer/scorer.json  scored.parquet  selected.jsonl  selection.json  run.json

or a bare flow run directory (``criteria.json`` at the top). The models validate strictly by default (for the
flow's resume and ``kb add --from-run`` to share later). The report reads them leniently (:meth:`RunFiles.read`,
:mod:`critiq.report.lenient`): a value of the wrong shape in a hand-edited file is dropped and noted, and only a file
that cannot be parsed at all (or lacks what defines it) is reported as unreadable.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from critiq.data.models import Criterion, CriterionStats
from critiq.errors import CritiqError
from critiq.io import iter_jsonl
from critiq.llm.usage import Usage
from critiq.report.lenient import Entries, Items, Maybe, validate_leniently

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
MODEL_KEYS = ("model", "manager_model", "worker_model", "models")


# ------------------------------------------------------------------------------------------- the flow
class HistoryRow(BaseModel):
    """One version of a criterion line (``slot``) at one iteration, with its accuracy and the status it earned."""

    iteration: int
    slot: int
    name: str = ""
    description: str = ""
    origin: str = ""
    accuracy: float | None = None
    coverage: float | None = None
    judged: int | None = None
    n: int | None = None
    status: str = ""


class FinalCriterion(Criterion):
    """A final criterion in ``criteria.json``: the criterion, its stats and its line's versions."""

    stats: Maybe[CriterionStats] = None
    history: Items[HistoryRow] = Field(default_factory=list)


class Thresholds(BaseModel):
    low: float | None = None
    high: float | None = None


class PositionBias(BaseModel):
    """How much verdicts depend on the order of the texts (what ``critiq.mine.metrics.position_bias`` measured)."""

    flip_rate: float | None = None
    cells_in_both_orders: int = 0
    first_position_rate: float | None = None
    answers: int = 0


class FlowCriteria(BaseModel):
    """``criteria.json``: the flow's final criteria, votes, thresholds, position bias and models."""

    criteria: Items[FinalCriterion]
    vote: Maybe[CriterionStats] = None
    weighted_vote: Maybe[CriterionStats] = None
    valid_vote: Maybe[CriterionStats] = None
    thresholds: Maybe[Thresholds] = None
    position_bias: Maybe[PositionBias] = None
    models: Entries[str] = {}


class Retrieval(BaseModel):
    """What the knowledge-base retrieval judged, spent and kept."""

    knowledge_base_size: int | None = None
    candidates: Items[str] = []
    judgments: int | None = None
    requests: int | None = None
    kept: Items[str] = []
    accuracy: Entries[float | None] = {}


class FlowSettings(BaseModel):
    """The flow settings the report shows (``state.json``'s ``config``; the flow keeps more)."""

    task: str | None = None
    n_criteria: int | None = None
    iterations: int | None = None
    low: float | None = None
    high: float | None = None
    swap: str | None = None
    use_kb: bool | None = None
    kb_candidates: int | None = None
    language: str | None = None
    seed: int | None = None


class IterationRows(RootModel[Items[HistoryRow]]):
    """``mine/iterations/iteration_N.json``: the rows of one iteration."""


class FlowState(BaseModel):
    """What the report reads of ``state.json``, the flow's checkpoint."""

    history: Items[HistoryRow] = []
    retrieval: Maybe[Retrieval] = None
    config: Maybe[FlowSettings] = None


# ------------------------------------------------------------------------------ annotation, scorer, selection
class AnnotationCounts(BaseModel):
    """``annotate``'s summary: pairs written, skipped, failed, tied, and agreement with human labels in the input."""

    written: int | None = None
    skipped: int | None = None
    failed: int | None = None
    ties: int | None = None
    criteria: Entries[CriterionStats] = {}
    vote: Maybe[CriterionStats] = None


class Annotation(BaseModel):
    """``annotate.json``: the summary and the requests it cost."""

    summary: Maybe[AnnotationCounts] = None
    usage: Maybe[Usage] = None
    uses_local_model: bool = False


class FitSummary(BaseModel):
    """The scorer's fit report: held-out pairwise accuracy and its Wilson interval, sizes, time."""

    accuracy: float | None = None
    interval: tuple[float, float] | None = None
    n_train: int | None = None
    n_valid: int | None = None
    skipped: int | None = None
    train_seconds: float | None = None


class ScorerManifest(BaseModel):
    """``scorer/scorer.json``: the scorer's kind, its options (each kind's own) and its fit report."""

    kind: str
    version: int | None = None
    config: Maybe[dict[str, Any]] = None
    fit_report: Maybe[FitSummary] = None


class Selection(BaseModel):
    """``selection.json``: how the selected records were chosen."""

    method: str | None = None
    k: int | None = None
    fraction: float | None = None
    tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    selected: int | None = None


class RunNotes(BaseModel):
    """``run.json``: free-form notes a pipeline script may leave; model names under any ``model``-like key."""

    model_config = ConfigDict(extra="allow")

    uses_local_model: bool = False

    def recorded_models(self) -> list[str]:
        found: list[str] = []

        def walk(value: object, key: str = "") -> None:
            if key in MODEL_KEYS:
                names = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
                found.extend(n for n in names if isinstance(n, str) and n and n not in found)
            elif isinstance(value, dict):
                for name, item in value.items():
                    walk(item, str(name))
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.model_extra or {})
        return found


# ------------------------------------------------------------------------------------------- reading
@dataclass
class RunFiles:
    """A run directory's layout; ``problems`` lists what could not be read, ``ignored`` what was dropped."""

    root: Path
    mine: Path | None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def locate(cls, run_dir: Path) -> RunFiles:
        """A pipeline directory (``mine/`` inside) or a bare flow run directory."""
        if not run_dir.is_dir():
            raise CritiqError(f"{run_dir}: no such run directory")
        for candidate in (run_dir, run_dir / "mine"):
            if (candidate / "criteria.json").is_file() or (candidate / "state.json").is_file():
                return cls(run_dir, candidate)
        return cls(run_dir, None)

    def part(self, name: str) -> Path:
        return self.root / name

    def problem(self, path: Path, error: Exception | str) -> None:
        name = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.problems.append(f"{name}: {text}")
        log.warning("report: %s: %s", path, text)

    def read(self, model: type[M], path: Path | None) -> M | None:
        """The file at ``path`` as ``model``, leniently; None (and a problem noted) when absent or unreadable."""
        if path is None or not path.is_file():
            return None
        try:
            view, ignored = validate_leniently(model, json.loads(path.read_text(encoding="utf-8")))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            self.problem(path, f"not a {model.__name__} ({where + ': ' if where else ''}{first['msg']})")
            return None
        except (OSError, ValueError) as error:
            self.problem(path, error)
            return None
        for note in ignored:
            self.problem(path, f"ignored {note}")
        return view

    def criteria(self) -> FlowCriteria | None:
        return self.read(FlowCriteria, self.mine / "criteria.json") if self.mine else None

    def state(self) -> FlowState | None:
        return self.read(FlowState, self.mine / "state.json") if self.mine else None

    def flow_usage(self) -> Usage | None:
        return self.read(Usage, self.mine / "usage.json") if self.mine else None

    def annotation(self) -> Annotation | None:
        return self.read(Annotation, self.part("annotate.json"))

    def scorer(self) -> ScorerManifest | None:
        return self.read(ScorerManifest, self.part("scorer") / "scorer.json")

    def selection(self) -> Selection | None:
        return self.read(Selection, self.part("selection.json"))

    def notes(self) -> RunNotes | None:
        return self.read(RunNotes, self.part("run.json"))

    def iteration_rows(self) -> list[HistoryRow]:
        """The per-iteration files the flow writes (``mine/iterations/iteration_N.json``), in order."""
        if self.mine is None:
            return []
        rows: list[HistoryRow] = []
        for path in sorted((self.mine / "iterations").glob("iteration_*.json")):
            rows += (self.read(IterationRows, path) or IterationRows([])).root
        return rows

    def label_counts(self) -> dict[str, int] | None:
        """``labeled.jsonl``'s labels counted (``tie`` for none), or None when there is no such file."""
        path = self.part("labeled.jsonl")
        if not path.is_file():
            return None
        counts: Counter[str] = Counter()
        try:
            for record in iter_jsonl(path):
                label = record.get("preferred", record.get("label")) if isinstance(record, dict) else None
                counts["tie" if label is None else str(label)] += 1
        except (OSError, ValueError) as error:
            self.problem(path, error)
            return None
        return dict(counts)
