"""``selection.json``: how ``critiq select`` chose the selected records."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from critiq.rundir.save import save

SELECTION_FILE = "selection.json"


class Selection(BaseModel):
    """The budget (``method``: ``top_k`` with ``k``, ``fraction``, or ``tokens``), the sampling temperature and seed
    (0: plain top-k), and how many records were selected of how many scored."""

    method: Literal["top_k", "fraction", "tokens"] | None = None
    k: int | None = None
    fraction: float | None = None
    tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    selected: int | None = None
    scored: int | None = None
    out: str = ""


def record_selection(
    out: Path,
    *,
    selected: int,
    scored: int | None = None,
    top_k: int | None = None,
    fraction: float | None = None,
    tokens: int | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
) -> Path:
    """Write ``selection.json`` beside ``out`` (the selected records): the budget, the sampling and the counts."""
    method: Literal["top_k", "fraction", "tokens"] = (
        "top_k" if top_k is not None else ("fraction" if fraction is not None else "tokens")
    )
    record = Selection(
        method=method,
        k=top_k,
        fraction=fraction,
        tokens=tokens,
        temperature=temperature,
        seed=seed,
        selected=selected,
        scored=scored,
        out=out.name,
    )
    return save(out.parent / SELECTION_FILE, record)
