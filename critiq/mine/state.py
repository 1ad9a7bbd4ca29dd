"""The run directory: a checkpoint after every step, written atomically, and the judgments appended as they come."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from critiq.data.models import Criterion, Example, Judgment
from critiq.errors import CritiqError
from critiq.io import JsonlAppender, atomic_write_json, iter_jsonl
from critiq.llm.usage import Usage

STATE_VERSION = 1

Status = Literal["new", "good", "mid", "low", "unjudged"]
Step = Literal["start", "iterating", "done"]
Phase = Literal["evaluate", "reflect", "done"]


class Slot(BaseModel):
    """One line of criteria: its current version, and the best version seen so far.

    Status: ``new`` (not judged yet), ``good`` / ``mid`` / ``low`` (by accuracy), ``unjudged`` (too few of its
    judgments succeeded to rate it: asked again, never banned for it).
    """

    id: int
    current: Criterion
    best: Criterion | None = None
    status: Status = "new"


class HistoryRow(BaseModel):
    """One criterion version as evaluated in one iteration (and what the reflection then did with it)."""

    iteration: int
    slot: int
    name: str
    description: str
    origin: str
    accuracy: float | None
    coverage: float
    judged: int
    n: int
    status: Status
    failed: int = 0
    wrong: int | None = None  # mid criteria: wrong cases found, and how many of them were critiqued
    critiqued: int | None = None


class Evidence(BaseModel):
    """One human-labelled example as the manager remembers it: the label, the domain and the reason."""

    example_id: str
    label: str
    domain: str | None = None
    text: str


class RunState(BaseModel):
    """Everything needed to continue a killed run. Holds no secret: model settings are names, not keys."""

    version: int = STATE_VERSION
    fingerprint: str
    identity: dict[str, str] = Field(default_factory=dict)
    step: Step = "start"  # start -> iterating -> done
    iteration: int = 0
    phase: Phase = "evaluate"  # within an iteration: evaluate -> reflect (or done in the last one)
    warmed_up: bool = False
    notes: list[Evidence] = Field(default_factory=list)
    slots: list[Slot] = Field(default_factory=list)
    retired: list[Slot] = Field(default_factory=list)
    banned: list[Criterion] = Field(default_factory=list)
    history: list[HistoryRow] = Field(default_factory=list)
    retrieval: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    usage_before: Usage = Field(default_factory=Usage)
    config: dict[str, Any] = Field(default_factory=dict)


IDENTITY_NAMES = {
    "data": "the training data",
    "initial": "the initial criteria",
    "settings": "the settings",
    "manager_model": "the manager model",
    "worker_model": "the worker model",
    "prompts": "the prompt templates",
    "language": "the prompt language",
}


def data_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.model_dump_json().encode())
    return digest.hexdigest()[:16]


def settings_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(identity: dict[str, str]) -> str:
    """One hash of the run's identity (data, settings, models, prompts, language); a resume must match it."""
    return settings_digest(identity)[:20]


def identity_changes(
    before: dict[str, str], now: dict[str, str], config_before: dict[str, Any], config_now: dict[str, Any]
) -> list[str]:
    """What differs between a recorded run identity and the current one, in words."""
    changes = []
    for key, words in IDENTITY_NAMES.items():
        if before.get(key) == now.get(key):
            continue
        if key == "settings":
            fields = sorted(k for k in config_now if config_before.get(k) != config_now.get(k))
            shown = ", ".join(f"{k} ({config_before.get(k)!r} -> {config_now.get(k)!r})" for k in fields)
            changes.append(f"{words}: {shown}" if shown else words)
        elif key in ("manager_model", "worker_model", "language"):
            changes.append(f"{words} (was {before.get(key)!r}, now {now.get(key)!r})")
        else:
            changes.append(words)
    return changes


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
