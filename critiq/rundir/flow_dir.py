"""A flow run directory on disk: the checkpoint, the judgments appended as they come, and the other files' writer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ValidationError

from critiq.data.models import Judgment
from critiq.errors import CritiqError
from critiq.io import JsonlAppender, iter_jsonl
from critiq.llm.usage import Usage
from critiq.rundir.flow import STATE_VERSION, RunState
from critiq.rundir.save import save


class RunDir:
    """Paths and writers of one flow run directory (``critiq mine --out``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise CritiqError(f"out={self.path}: exists and is not a directory")

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def judgments_file(self) -> Path:
        return self.path / "judgments.jsonl"

    def exists(self) -> bool:
        """True when the directory holds a run to resume (or to refuse overwriting).

        A run that stopped before its first request was answered (a rejected key, a wrong model name, a provider it
        could not reach) left only its initial checkpoint and failed judgments: that is not a run, and a plain rerun
        starts over in the same directory.
        """
        return self.state_file.exists() and not self._pristine()

    def _pristine(self) -> bool:
        try:
            state = RunState.model_validate_json(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False  # let load() report it
        if state.version != STATE_VERSION or "step" not in state.model_fields_set or state.step != "start":
            return False  # a checkpoint critiq wrote records its step; one without it is not a fresh start
        return state.usage_before.requests == 0 and not self._answered() and not state.notes

    def _answered(self) -> bool:
        """Whether a judgment came back: failed ones (a provider that was never reached) are no work done."""
        if not self.judgments_file.exists() or self.judgments_file.stat().st_size == 0:
            return False
        try:
            return any(not judgment.failed for _, judgment in self.judgments())
        except (ValueError, KeyError, TypeError):
            return True  # a file critiq cannot read back is kept, and so is the run

    def start_over(self) -> None:
        """Forget what a run that did no work left (its checkpoint, failed judgments and usage) before a fresh start."""
        for path in (self.state_file, self.judgments_file, self.path / "usage.json"):
            path.unlink(missing_ok=True)

    def load(self) -> RunState:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CritiqError(f"{self.state_file}: unreadable checkpoint ({error})") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise CritiqError(
                f"{self.state_file}: written by an incompatible critiq (state version {found}, "
                f"this is {STATE_VERSION}); start a new run with another `run_dir`"
            )
        try:
            state = RunState.model_validate(data)
        except ValidationError as error:
            raise CritiqError(f"{self.state_file}: invalid checkpoint ({error.errors()[0]['msg']})") from None
        if not state.fingerprint:
            raise CritiqError(f"{self.state_file}: invalid checkpoint (no fingerprint)")
        return state

    def save(self, state: RunState) -> None:
        self.write("state.json", state)

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

    def write(self, name: str, data: BaseModel | Sequence[BaseModel]) -> Path:
        """``name`` (atomically) holding a model, or a list of models, as JSON."""
        return save(self.path / name, data)
