"""The run directory: a checkpoint after every step, written atomically, and the judgments appended as they come."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from critiq.data.models import Criterion, Example, Judgment
from critiq.errors import CritiqError
from critiq.io import JsonlAppender, atomic_write_json, iter_jsonl
from critiq.llm.usage import Usage

STATE_VERSION = 1


class Slot(BaseModel):
    """One line of criteria: its current version, and the best version seen so far."""

    id: int
    current: Criterion
    best: Criterion | None = None
    status: str = "new"  # new | good | mid | low (banned and replaced)


class HistoryRow(BaseModel):
    iteration: int
    slot: int
    name: str
    description: str
    origin: str
    accuracy: float | None
    coverage: float
    judged: int
    n: int
    status: str


class RunState(BaseModel):
    """Everything needed to continue a killed run. Holds no secret: model settings are names, not keys."""

    version: int = STATE_VERSION
    fingerprint: str
    step: str = "start"  # start -> initialised -> iterating -> done
    iteration: int = 0
    phase: str = "evaluate"  # within an iteration: evaluate -> reflect
    notes: list[str] = Field(default_factory=list)
    slots: list[Slot] = Field(default_factory=list)
    banned: list[Criterion] = Field(default_factory=list)
    history: list[HistoryRow] = Field(default_factory=list)
    retrieval: dict[str, Any] = Field(default_factory=dict)
    usage_before: Usage = Field(default_factory=Usage)
    config: dict[str, Any] = Field(default_factory=dict)


def fingerprint(examples: Sequence[Example], config: dict[str, Any]) -> str:
    """Identity of the training data and the settings that change results; a resume must match it."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.model_dump_json().encode())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:20]


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise CritiqError(f"--out {self.path}: exists and is not a directory")

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def judgments_file(self) -> Path:
        return self.path / "judgments.jsonl"

    def exists(self) -> bool:
        """True when the directory holds a run to resume (or to refuse overwriting).

        A run that stopped before its first request was answered (a rejected key, a wrong model name) left only its
        initial checkpoint: that is not a run, and a plain rerun may start over in the same directory.
        """
        return self.state_file.exists() and not self._pristine()

    def _pristine(self) -> bool:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False  # let load() report it
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION or data.get("step") != "start":
            return False
        requests = (data.get("usage_before") or {}).get("requests", 0)
        no_judgments = not self.judgments_file.exists() or self.judgments_file.stat().st_size == 0
        return requests == 0 and no_judgments and not data.get("notes")

    def load(self) -> RunState:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CritiqError(f"{self.state_file}: unreadable checkpoint ({error})") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise CritiqError(
                f"{self.state_file}: written by an incompatible critiq (state version {found}, "
                f"this is {STATE_VERSION}); start a new run with another --out"
            )
        try:
            return RunState.model_validate(data)
        except ValidationError as error:
            raise CritiqError(f"{self.state_file}: invalid checkpoint ({error.errors()[0]['msg']})") from None

    def save(self, state: RunState) -> None:
        atomic_write_json(self.state_file, state.model_dump(mode="json"))

    def recorded_usage(self) -> Usage | None:
        """What ``usage.json`` says was spent, or None when it is missing or unreadable."""
        try:
            return Usage.model_validate_json((self.path / "usage.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def judgments(self) -> list[tuple[str, Judgment]]:
        return [(row["key"], Judgment.model_validate(row["judgment"])) for row in iter_jsonl(self.judgments_file)]

    def appender(self) -> JsonlAppender:
        return JsonlAppender(self.judgments_file, flush_every=1)

    def write(self, name: str, data: Any) -> Path:
        path = self.path / name
        atomic_write_json(path, data)
        return path
