"""Score a corpus with a trained scorer, and select from the scored output.

``score_corpus`` streams any data source (:mod:`critiq.data.sources`: files, globs, folders, ``hf://`` names, fsspec
URIs) batch by batch (``engine="datasets"``) or through Ray Data (``engine="ray"``), and writes every input column +
``score``: one Parquet file, or a folder of Parquet shards in Hub layout with a dataset card.
``select_file`` reads the scores back and writes the selected records as JSONL.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel

from critiq.data.cards import scored_card
from critiq.data.reader import iter_tables
from critiq.data.shards import DEFAULT_SHARD_ROWS, ShardWriter
from critiq.data.sources import FORMATS, resolve
from critiq.errors import CritiqError, InputError, OutputExists
from critiq.scorer.base import Scorer
from critiq.scorer.corpus import ParquetSink, atomic_path
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

    def summary(self, out: str | os.PathLike[str], engine: str, seconds: float) -> ScoreSummary:
        has = self.n > 0
        return ScoreSummary(
            out=os.fspath(out),
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
    column = table.column(text_field)
    if max_chars:
        column = pc.utf8_slice_codeunits(column, 0, max_chars)
    from_arrow = getattr(scorer, "score_arrow", None)  # the n-gram scorer reads Arrow's buffers: no Python strings
    if from_arrow is not None and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        scores = pa.array(from_arrow(column), type=pa.float32())
    else:
        scores = pa.array(scorer.score(column.to_pylist()), type=pa.float32())
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
    shard_rows: int | None = None,
    config: str | None = None,
    limit: int | None = None,
    skip: int = 0,
    force: bool = False,
) -> ScoreSummary:
    """Score every record of ``input`` and write ``out``.

    ``input``: a dataset name (a file, glob, folder, ``hf://ORG/NAME[@REV][:SPLIT]`` with ``config``, fsspec URI), a
    :class:`~critiq.data.sources.Source` or a ``datasets.Dataset``; ``skip`` rows are passed over, then at most
    ``limit`` scored. ``scorer``: a ``Scorer`` or a saved scorer directory. ``out``: a ``.parquet`` file (written
    atomically), or a folder / URI that gets Parquet shards of ``shard_rows`` rows in Hub layout with a README.md
    dataset card. Records keep all their fields; an ``id_field`` column (the row number in the source) is added when
    the input has none (engine ``datasets``). ``max_chars`` truncates texts before scoring. An existing ``.parquet``
    ``out`` is replaced only with ``force``.
    """
    if batch_size <= 0:
        raise CritiqError(f"batch_size={batch_size}: must be > 0")
    if max_chars is not None and max_chars <= 0:
        raise CritiqError("--max-chars must be > 0")
    if engine not in ("datasets", "ray"):
        raise CritiqError(f"--engine must be 'datasets' or 'ray', got '{engine}'")
    source = resolve(input, config=config, limit=limit, skip=skip)
    target = os.fspath(out)
    suffix = Path(target.rstrip("/")).suffix.lower()
    if suffix in FORMATS and suffix != ".parquet":
        raise CritiqError(f"the scored output must be a .parquet file or a folder for shards, got {target}")
    sharded = shard_rows is not None or suffix != ".parquet"
    if not sharded and Path(target).exists() and not force:
        raise OutputExists(target)
    start = time.perf_counter()
    if engine == "ray":
        from critiq.integrations.ray import score_with_ray

        if not sharded:
            raise CritiqError("--engine ray writes a folder of shards: give --out a folder or URI, not a .parquet file")
        model = resolve_scorer(scorer)
        shards = score_with_ray(
            source,
            model,
            target,
            card=scored_card(source, model, _saved_in(scorer), text_field, max_chars, "ray"),
            text_field=text_field,
            batch_size=batch_size,
            max_chars=max_chars,
            address=ray_address,
            shard_rows=shard_rows,
        )
        summary = _summary_from_shards(target, "ray", time.perf_counter() - start)
        logger.info("scored %d records with ray in %.1fs -> %s", shards.rows, summary.seconds, target)
        return summary
    model = resolve_scorer(scorer)
    stats = _Stats()
    sink: ShardWriter | ParquetSink
    sink = ShardWriter(target, shard_rows=shard_rows or DEFAULT_SHARD_ROWS) if sharded else ParquetSink(Path(target))
    row = source.skip
    try:
        for table in iter_tables(source, batch_size, text_field):
            scored = score_table(table, model, text_field, max_chars)
            if id_field and id_field not in table.column_names:
                numbers = pa.array(np.arange(row, row + table.num_rows), type=pa.int64())
                scored = scored.append_column(id_field, numbers)
            stats.add(scored.column(SCORE_FIELD).to_numpy())
            sink.write(scored)
            row += table.num_rows
            logger.debug("scored %d records of %s", row - source.skip, source.name)
        summary = stats.summary(target, "datasets", time.perf_counter() - start)
        if isinstance(sink, ShardWriter):
            card = scored_card(source, model, _saved_in(scorer), text_field, max_chars, "datasets")
            card.details.update(_score_details(summary))
            sink.close(card)
        else:
            sink.close()
    except BaseException:
        sink.abort()
        raise
    logger.info(
        "scored %d records in %.1fs (%.0f/s) -> %s", summary.n, summary.seconds, summary.docs_per_second, target
    )
    return summary


def _saved_in(scorer: Scorer | str | os.PathLike[str]) -> str | os.PathLike[str] | None:
    return None if isinstance(scorer, Scorer) else scorer


def _score_details(summary: ScoreSummary) -> dict[str, Any]:
    if summary.score_mean is None:
        return {}
    return {"score mean / min / max": f"{summary.score_mean:.4f} / {summary.score_min:.4f} / {summary.score_max:.4f}"}


def describe_scores(fs: pafs.FileSystem, parts: list[str]) -> dict[str, Any]:
    """Score statistics of Parquet ``parts`` on ``fs`` for a dataset card."""
    stats = _Stats()
    for part in parts:
        column = pq.read_table(part, columns=[SCORE_FIELD], filesystem=fs).column(0)
        stats.add(column.to_numpy(zero_copy_only=False))
    return _score_details(stats.summary("", "", 0.0))


def _summary_from_shards(out: str, engine: str, seconds: float) -> ScoreSummary:
    stats = _Stats()
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
