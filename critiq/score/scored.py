"""Reading a scored output back (a ``.parquet`` file or a folder of shards): its batches, scores and token counts."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from critiq.data.sources import resolve
from critiq.errors import InputError
from critiq.score.table import SCORE_FIELD, ScoreStats, ScoreSummary


def summary_from_shards(out: str, engine: str, seconds: float) -> ScoreSummary:
    """The summary of a scored output, read back from its shards (what the Ray engine wrote)."""
    stats = ScoreStats()
    for batch in scored_batches(out, [SCORE_FIELD]):
        stats.add(batch.column(0).to_numpy(zero_copy_only=False))
    return stats.summary(out, engine, seconds)


def scored_batches(path: str | os.PathLike[str], columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The record batches of a scored output (a ``.parquet`` file or a folder of shards), in row order."""
    source = resolve(path)
    if not source.files or any(f.format != "parquet" for f in source.files):
        raise InputError("expected critiq score's output: a .parquet file or folder of shards", source=source.name)
    for file in source.files:
        try:
            with file.fs.open(file.path, "rb") as handle:
                reader = pq.ParquetFile(handle)
                names = reader.schema_arrow.names
                for needed in columns or []:
                    if needed not in names:
                        raise InputError(f"no field '{needed}' (fields: {', '.join(names)})", source=file.label)
                yield from reader.iter_batches(columns=columns)
        except (OSError, pa.ArrowException) as error:
            raise InputError(f"unreadable scored file: {error}", source=file.label) from error


def read_scored(
    path: str | os.PathLike[str], *, text_field: str = "text", token_field: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and token counts of a scored output (file or folder of shards), in row order.

    Token counts come from ``token_field`` when given, else are estimated as ``len(text) // 4``.
    """
    length_field = token_field or text_field
    scores: list[np.ndarray] = []
    tokens: list[np.ndarray] = []
    for batch in scored_batches(path, [SCORE_FIELD, length_field]):
        scores.append(batch.column(0).to_numpy(zero_copy_only=False).astype(np.float64))
        column = batch.column(1)
        if token_field:
            tokens.append(column.to_numpy(zero_copy_only=False).astype(np.int64))
        else:
            tokens.append(np.asarray(pc.utf8_length(column).to_numpy(zero_copy_only=False)) // 4)
    if not scores:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(scores), np.concatenate(tokens).astype(np.int64)
