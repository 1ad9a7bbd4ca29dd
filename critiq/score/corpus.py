"""Score a corpus with a trained scorer on the local engine or on Ray Data (the engines: :mod:`critiq.score.local`,
:mod:`critiq.score.ray`).

``score_corpus`` streams any data source (:mod:`critiq.data.sources`: files, globs, folders, ``hf://`` names, fsspec
URIs) batch by batch (``engine="datasets"``) or through Ray Data (``engine="ray"``), and writes every input column +
``score``: one Parquet file, or a folder of Parquet shards in Hub layout with a dataset card.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

from critiq.data.cards import scored_card
from critiq.data.sources import FORMATS, resolve
from critiq.errors import CritiqError, OutputExists
from critiq.score.local import score_locally
from critiq.score.ray import score_with_ray
from critiq.score.scored import summary_from_shards
from critiq.score.table import ScoreSummary, resolve_scorer, saved_in
from critiq.scorer.base import Scorer

logger = logging.getLogger(__name__)

Engine = Literal["datasets", "ray"]


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
        raise CritiqError("`max_chars` must be > 0")
    if engine not in ("datasets", "ray"):
        raise CritiqError(f"engine={engine!r}: use datasets or ray")
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
        if not sharded:
            raise CritiqError("`engine` ray writes a folder of shards: give out= a folder or URI, not a .parquet file")
        model = resolve_scorer(scorer)
        shards = score_with_ray(
            source,
            model,
            target,
            card=scored_card(source, model, saved_in(scorer), text_field, max_chars, "ray"),
            text_field=text_field,
            batch_size=batch_size,
            max_chars=max_chars,
            address=ray_address,
            shard_rows=shard_rows,
        )
        summary = summary_from_shards(target, "ray", time.perf_counter() - start)
        logger.info("scored %d records with ray in %.1fs -> %s", shards.rows, summary.seconds, target)
        return summary
    model = resolve_scorer(scorer)
    summary = score_locally(
        source,
        model,
        target,
        sharded=sharded,
        card=scored_card(source, model, saved_in(scorer), text_field, max_chars, "datasets"),
        text_field=text_field,
        id_field=id_field,
        batch_size=batch_size,
        max_chars=max_chars,
        shard_rows=shard_rows,
        started=start,
    )
    logger.info(
        "scored %d records in %.1fs (%.0f/s) -> %s", summary.n, summary.seconds, summary.docs_per_second, target
    )
    return summary
