"""Reading a run directory: leniently for the report (:class:`RunFiles`), strictly for ``kb add --from-run``.

The report never lets one bad file stop it: a value of the wrong shape in a hand-edited file is dropped and noted
(:mod:`critiq.rundir.lenient`), and only a file that cannot be parsed at all (or lacks what defines it) is reported
as unreadable.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from critiq.errors import CritiqError
from critiq.io import iter_jsonl
from critiq.llm.usage import Usage
from critiq.rundir.ablation import ABLATION_FILE, AblationTable
from critiq.rundir.annotation import ANNOTATION_FILE, Annotation
from critiq.rundir.flow import FlowCriteria, HistoryRow, IterationRows, RunState
from critiq.rundir.labels import LABELS_FILE, SKIPPED_FILE, LabelRow, LabelSummary, summarise
from critiq.rundir.lenient import validate_leniently
from critiq.rundir.notes import RunNotes
from critiq.rundir.scorer import MANIFEST, ScorerManifest
from critiq.rundir.selection import SELECTION_FILE, Selection

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
CRITERIA_FILE = "criteria.json"


def read_criteria(run_dir: str | Path) -> FlowCriteria:
    """The ``criteria.json`` of a ``critiq mine`` run directory (or of its ``mine/`` folder), strictly."""
    root = Path(run_dir)
    path = next((p for p in (root / CRITERIA_FILE, root / "mine" / CRITERIA_FILE) if p.is_file()), None)
    if path is None:
        raise CritiqError(f"{root}: no criteria.json (is it a finished `critiq mine` run directory?)")
    try:
        return FlowCriteria.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        first = str(error).splitlines()[0]
        raise CritiqError(f"{path}: unreadable criteria file ({first})") from None


@dataclass
class RunFiles:
    """A run directory's layout; ``problems`` lists what could not be read or was dropped."""

    root: Path
    mine: Path | None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def locate(cls, run_dir: Path) -> RunFiles:
        """A pipeline directory (``mine/`` inside) or a bare flow run directory."""
        if not run_dir.is_dir():
            raise CritiqError(f"{run_dir}: no such run directory")
        for candidate in (run_dir, run_dir / "mine"):
            if (candidate / CRITERIA_FILE).is_file() or (candidate / "state.json").is_file():
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
        return self.read(FlowCriteria, self.mine / CRITERIA_FILE) if self.mine else None

    def state(self) -> RunState | None:
        return self.read(RunState, self.mine / "state.json") if self.mine else None

    def flow_usage(self) -> Usage | None:
        return self.read(Usage, self.mine / "usage.json") if self.mine else None

    def annotation(self) -> Annotation | None:
        return self.read(Annotation, self.part(ANNOTATION_FILE))

    def scorer(self) -> ScorerManifest | None:
        return self.read(ScorerManifest, self.part("scorer") / MANIFEST)

    def selection(self) -> Selection | None:
        return self.read(Selection, self.part(SELECTION_FILE))

    def ablation(self) -> AblationTable | None:
        """``ablation.json`` at the top, or in an ``ablation/`` folder (``critiq ablate --out RUN_DIR/ablation``)."""
        path = next((p for p in (self.part(ABLATION_FILE), self.part("ablation") / ABLATION_FILE) if p.is_file()), None)
        return self.read(AblationTable, path)

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

    def human_labels(self) -> LabelSummary | None:
        """``pairs.jsonl`` (``critiq label``'s output) summarised, or None when there is no such file."""
        path = self.part(LABELS_FILE)
        if not path.is_file():
            return None
        rows = self._rows(path)
        if rows is None:
            return None
        skipped = self._rows(self.part(SKIPPED_FILE)) if self.part(SKIPPED_FILE).is_file() else []
        return summarise(rows, skipped or [])

    def _rows(self, path: Path) -> list[LabelRow] | None:
        rows: list[LabelRow] = []
        try:
            for number, record in enumerate(iter_jsonl(path), start=1):
                try:
                    rows.append(LabelRow.model_validate(record))
                except ValidationError as error:
                    self.problem(path, f"ignored line {number} ({error.errors()[0]['msg']})")
        except (OSError, ValueError) as error:
            self.problem(path, error)
            return None
        return rows
