"""Score a corpus file with a trained scorer, and select from a scored file.

``score_corpus`` streams JSONL/JSON/Parquet files or HF datasets batch by batch (``engine="datasets"``)
or through Ray Data (``engine="ray"``) and writes one Parquet file: every input column + ``score``.
``select_file`` reads the scores back and writes the selected records as JSONL.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel

from critiq.errors import CritiqError, InputError
from critiq.scorer.base import Scorer
from critiq.scorer.corpus import ParquetSink, atomic_path, describe, iter_tables
from critiq.selection import select

logger = logging.getLogger(__name__)

SCORE_FIELD = "score"
Engine = Literal["datasets", "ray"]


class ScoreSummary(BaseModel):
    """What ``score_corpus`` wrote."""

    out: str
    engine: str
    n: int
    seconds: float
    docs_per_second: float
    score_mean: float | None = None
    score_min: float | None = None
    score_max: float | None = None


class SelectSummary(BaseModel):
    """What ``select_file`` wrote."""

    out: str
    n_total: int
    n_selected: int
    tokens_selected: int
    min_score: float | None = None


class _Stats:
    def __init__(self) -> None:
        self.n, self.total = 0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, scores: np.ndarray) -> None:
        if len(scores):
            self.n += len(scores)
            self.total += float(np.sum(scores, dtype=np.float64))
            self.low = min(self.low, float(scores.min()))
            self.high = max(self.high, float(scores.max()))

    def summary(self, out: Path, engine: str, seconds: float) -> ScoreSummary:
        has = self.n > 0
        return ScoreSummary(
            out=str(out),
            engine=engine,
            n=self.n,
            seconds=round(seconds, 3),
            docs_per_second=round(self.n / seconds, 1) if seconds > 0 else 0.0,
            score_mean=self.total / self.n if has else None,
            score_min=self.low if has else None,
            score_max=self.high if has else None,
        )


def score_table(
    table: pa.Table, scorer: Scorer, text_field: str, max_chars: int | None, score_field: str = SCORE_FIELD
) -> pa.Table:
    """``table`` with a float32 ``score_field`` column (replacing one of that name)."""
    texts = table.column(text_field).to_pylist()
    if max_chars:
        texts = [text[:max_chars] for text in texts]
    scores = pa.array(scorer.score(texts), type=pa.float32())
    if score_field in table.column_names:
        return table.set_column(table.column_names.index(score_field), score_field, scores)
    return table.append_column(score_field, scores)


def resolve_scorer(scorer: Scorer | str | os.PathLike[str]) -> Scorer:
    return scorer if isinstance(scorer, Scorer) else Scorer.load(scorer)


def score_corpus(
    input: Any,
    scorer: Scorer | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    text_field: str = "text",
    id_field: str = "id",
    engine: Engine = "datasets",
    batch_size: int = 1024,
    max_chars: int | None = None,
    ray_address: str | None = None,
) -> ScoreSummary:
    """Score every record of ``input`` and write ``out`` (Parquet, written atomically).

    ``input``: a .jsonl/.json/.parquet file, a ``datasets.save_to_disk`` directory, or a ``datasets.Dataset``.
    ``scorer``: a ``Scorer`` or a saved scorer directory. Records keep all their fields; an ``id_field``
    column (the row number) is added when the input has none. ``max_chars`` truncates texts before scoring.
    """
    if batch_size <= 0:
        raise CritiqError("--batch-size must be > 0")
    if max_chars is not None and max_chars <= 0:
        raise CritiqError("--max-chars must be > 0")
    out_path = Path(out)
    if out_path.suffix != ".parquet":
        raise CritiqError(f"the scored output must be a .parquet file, got {out_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if engine == "ray":
        from critiq.integrations.ray import score_with_ray

        n = score_with_ray(
            input,
            scorer,
            out_path,
            text_field=text_field,
            id_field=id_field,
            batch_size=batch_size,
            max_chars=max_chars,
            address=ray_address,
        )
        summary = _summary_from_file(out_path, "ray", time.perf_counter() - start)
        logger.info("scored %d records with ray in %.1fs -> %s", n, summary.seconds, out_path)
        return summary
    if engine != "datasets":
        raise CritiqError(f"--engine must be 'datasets' or 'ray', got '{engine}'")
    model = resolve_scorer(scorer)
    stats = _Stats()
    sink = ParquetSink(out_path)
    row = 0
    try:
        for table in iter_tables(input, batch_size, text_field):
            scored = score_table(table, model, text_field, max_chars)
            if id_field and id_field not in table.column_names:
                numbers = pa.array(np.arange(row, row + table.num_rows), type=pa.int64())
                scored = scored.append_column(id_field, numbers)
            stats.add(scored.column(SCORE_FIELD).to_numpy())
            sink.write(scored)
            row += table.num_rows
            logger.debug("scored %d records of %s", row, describe(input))
        sink.close()
    except BaseException:
        sink.abort()
        raise
    summary = stats.summary(out_path, "datasets", time.perf_counter() - start)
    logger.info(
        "scored %d records in %.1fs (%.0f/s) -> %s", summary.n, summary.seconds, summary.docs_per_second, out_path
    )
    return summary


def _summary_from_file(path: Path, engine: str, seconds: float) -> ScoreSummary:
    stats = _Stats()
    for batch in pq.ParquetFile(path).iter_batches(columns=[SCORE_FIELD]):
        stats.add(batch.column(0).to_numpy(zero_copy_only=False))
    return stats.summary(path, engine, seconds)


def read_scored(
    path: str | os.PathLike[str], *, text_field: str = "text", token_field: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and token counts of a scored Parquet file, in row order.

    Token counts come from ``token_field`` when given, else are estimated as ``len(text) // 4``.
    """
    source = Path(path)
    try:
        reader = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"unreadable scored file: {error}", source=str(source)) from error
    names = reader.schema_arrow.names
    length_field = token_field or text_field
    for needed in (SCORE_FIELD, length_field):
        if needed not in names:
            raise InputError(f"no field '{needed}' (fields: {', '.join(names)})", source=str(source))
    scores: list[np.ndarray] = []
    tokens: list[np.ndarray] = []
    for batch in reader.iter_batches(columns=[SCORE_FIELD, length_field]):
        scores.append(batch.column(0).to_numpy(zero_copy_only=False).astype(np.float64))
        column = batch.column(1)
        if token_field:
            tokens.append(column.to_numpy(zero_copy_only=False).astype(np.int64))
        else:
            tokens.append(np.asarray(pc.utf8_length(column).to_numpy(zero_copy_only=False)) // 4)
    if not scores:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(scores), np.concatenate(tokens).astype(np.int64)


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
) -> SelectSummary:
    """Select from a scored Parquet file (see ``critiq.selection.select``) and write the records as JSONL.

    Records are written in corpus order, with all their fields, atomically.
    """
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
        for batch in pq.ParquetFile(scored_path).iter_batches():
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
