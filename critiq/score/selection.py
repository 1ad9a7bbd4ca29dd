"""Select from a scored output and write the selected records (the selection itself: :mod:`critiq.selection`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from critiq.errors import OutputExists
from critiq.score.scored import read_scored, scored_batches
from critiq.scorer.corpus import atomic_path
from critiq.selection import select

logger = logging.getLogger(__name__)


class SelectSummary(BaseModel):
    """What ``select_file`` wrote."""

    out: str
    n_total: int
    n_selected: int
    tokens_selected: int
    min_score: float | None = None


def select_file(
    scored_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    top_k: int | None = None,
    fraction: float | None = None,
    tokens: int | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    text_field: str = "text",
    token_field: str | None = None,
    force: bool = False,
) -> SelectSummary:
    """Select from a scored output (see ``critiq.selection.select``) and write the records as JSONL.

    Records are written in corpus order, with all their fields, atomically; an existing ``out`` is replaced only
    with ``force``.
    """
    if Path(out).exists() and not force:
        raise OutputExists(os.fspath(out))
    scores, token_counts = read_scored(scored_path, text_field=text_field, token_field=token_field)
    chosen = select(
        scores,
        top_k=top_k,
        fraction=fraction,
        tokens=tokens,
        token_counts=token_counts,
        temperature=temperature,
        seed=seed,
    )
    keep = np.zeros(len(scores), dtype=bool)
    keep[chosen] = True
    out_path = Path(out)
    row = 0
    with atomic_path(out_path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for batch in scored_batches(scored_path):
            mask = keep[row : row + batch.num_rows]
            row += batch.num_rows
            if mask.any():
                for record in batch.filter(pa.array(mask)).to_pylist():
                    handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        handle.flush()
    summary = SelectSummary(
        out=str(out_path),
        n_total=len(scores),
        n_selected=int(keep.sum()),
        tokens_selected=int(token_counts[keep].sum()),
        min_score=float(scores[keep].min()) if keep.any() else None,
    )
    logger.info(
        "selected %d of %d records (%d tokens) -> %s",
        summary.n_selected,
        summary.n_total,
        summary.tokens_selected,
        out_path,
    )
    return summary
