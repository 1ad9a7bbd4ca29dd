"""Writing a run directory's file: one model (or a list of them) as JSON, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from critiq.io import atomic_write_json


def save(path: Path, data: BaseModel | Sequence[BaseModel]) -> Path:
    """``path`` holding ``data`` dumped as JSON (a crash leaves the old file or the new one, never half of one)."""
    dumped = data.model_dump(mode="json") if isinstance(data, BaseModel) else [i.model_dump(mode="json") for i in data]
    atomic_write_json(path, dumped)
    return path
