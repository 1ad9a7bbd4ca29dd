"""The local engine: stream a source batch by batch through a scorer into one Parquet file or a folder of shards."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from critiq.data.cards import DatasetCard
from critiq.data.reader import iter_tables
from critiq.data.shards import DEFAULT_SHARD_ROWS, ShardWriter
from critiq.data.sources import Source
from critiq.score.table import SCORE_FIELD, ScoreStats, ScoreSummary, score_details, score_table
from critiq.scorer.base import Scorer
from critiq.scorer.corpus import ParquetSink

logger = logging.getLogger(__name__)


def score_locally(
    source: Source,
    scorer: Scorer,
    target: str,
    *,
    sharded: bool,
    card: DatasetCard,
    text_field: str = "text",
    id_field: str = "id",
    batch_size: int = 1024,
    max_chars: int | None = None,
    shard_rows: int | None = None,
    started: float | None = None,
) -> ScoreSummary:
    """Score ``source`` into ``target``: a ``.parquet`` file written atomically, or (``sharded``) a folder of shards
    with ``card`` as its README.md; an ``id_field`` column (the row number) is added when the input has none.
    The summary's time counts from ``started`` (a ``time.perf_counter()``) when given."""
    start = time.perf_counter() if started is None else started
    stats = ScoreStats()
    sink: ShardWriter | ParquetSink
    sink = ShardWriter(target, shard_rows=shard_rows or DEFAULT_SHARD_ROWS) if sharded else ParquetSink(Path(target))
    row = source.skip
    try:
        for table in iter_tables(source, batch_size, text_field):
            scored = score_table(table, scorer, text_field, max_chars)
            if id_field and id_field not in table.column_names:
                numbers = pa.array(np.arange(row, row + table.num_rows), type=pa.int64())
                scored = scored.append_column(id_field, numbers)
            stats.add(scored.column(SCORE_FIELD).to_numpy())
            sink.write(scored)
            row += table.num_rows
            logger.debug("scored %d records of %s", row - source.skip, source.name)
        summary = stats.summary(target, "datasets", time.perf_counter() - start)
        if isinstance(sink, ShardWriter):
            card.details.update(score_details(summary))
            sink.close(card)
        else:
            sink.close()
    except BaseException:
        sink.abort()
        raise
    return summary
