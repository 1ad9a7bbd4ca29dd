"""The Ray engine: score a corpus with Ray Data, one scorer per actor, written by Ray Data's own Parquet writer.

The output is a folder of shards in Hub layout on any pyarrow filesystem (a local path, ``s3://``, ``gs://``, ...):
each write task writes its shard straight to that filesystem, so nodes need no shared disk; the driver only names
the shards and writes the dataset card. Usable on its own in a Ray pipeline::

    ds.map_batches(ScorerUDF, fn_constructor_kwargs={"scorer_dir": "scorer/"}, batch_format="pyarrow",
                   compute=ray.data.ActorPoolStrategy(size=4))
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from critiq.data.cards import DatasetCard
from critiq.data.reader import iter_tables
from critiq.data.shards import (
    ShardSummary,
    check_output_folder,
    finish_shards,
    output_filesystem,
    remove_if_empty,
)
from critiq.data.sources import resolve
from critiq.errors import CritiqError, InputError
from critiq.integrations.ray import init_ray
from critiq.score.table import describe_scores, score_table
from critiq.scorer.base import Scorer

logger = logging.getLogger(__name__)


class ScorerUDF:
    """A Ray Data callable class: a scorer per actor (``scorer``, shipped by Ray, or loaded from ``scorer_dir``
    once per actor) adds a ``score`` column."""

    def __init__(
        self,
        scorer_dir: str | None = None,
        text_field: str = "text",
        max_chars: int | None = None,
        score_field: str = "score",
        scorer: Scorer | None = None,
    ) -> None:
        if scorer is None and scorer_dir is None:
            raise CritiqError("ScorerUDF needs scorer_dir= or scorer=")
        self.scorer = scorer if scorer is not None else Scorer.load(str(scorer_dir))
        self.text_field = text_field
        self.max_chars = max_chars
        self.score_field = score_field

    def __call__(self, batch: pa.Table) -> pa.Table:
        return score_table(batch, self.scorer, self.text_field, self.max_chars, self.score_field)


def pyarrow_filesystem(fs: Any) -> pafs.FileSystem:
    """The pyarrow filesystem for an fsspec one (Ray Data's readers take pyarrow filesystems)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def read_corpus(source: Any) -> Any:
    """A ``ray.data.Dataset`` over any data source: JSON Lines and Parquet files are read by Ray Data's readers
    on the workers; JSON and CSV files (loaded whole anyway), saved and Hub-streamed datasets through the driver."""
    import ray.data

    source = resolve(source)
    if source.skip:
        raise CritiqError("`skip` does not work with `engine` ray (Ray Data reads have no row offset); use `limit`")
    if source.files and source.files[0].format in ("parquet", "jsonl"):
        paths = [f.path for f in source.files]
        fs = pyarrow_filesystem(source.files[0].fs)
        if source.files[0].format == "parquet":
            dataset = ray.data.read_parquet(paths, filesystem=fs)
        else:
            # the pyarrow JSON reader (lines=False) reads JSON Lines, and takes a filesystem (lines=True does not)
            dataset = ray.data.read_json(paths, filesystem=fs, file_extensions=None)
    elif source.saved is not None or (source.dataset is not None and type(source.dataset).__name__ == "Dataset"):
        import datasets

        hf = source.dataset if source.dataset is not None else datasets.load_from_disk(str(source.saved))
        dataset = ray.data.from_huggingface(hf)
    else:
        tables = list(iter_tables(source, 65_536, None))
        dataset = ray.data.from_arrow(tables) if tables else ray.data.from_items([])
    return dataset.limit(source.limit) if source.limit is not None else dataset


def score_with_ray(
    input: Any,
    scorer: Scorer | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    card: DatasetCard | None = None,
    text_field: str = "text",
    batch_size: int = 1024,
    max_chars: int | None = None,
    address: str | None = None,
    shard_rows: int | None = None,
    concurrency: int | None = None,
    split: str = "train",
) -> ShardSummary:
    """Score ``input`` on Ray into a folder of Parquet shards at ``out`` (a path or a pyarrow filesystem URI).

    Rows keep the corpus order. ``shard_rows`` caps the rows of a shard (Ray Data's ``max_rows_per_file``).
    ``card`` is the README.md written with the shards (score statistics are added).
    """
    init_ray(address)
    import ray
    import ray.data

    source = resolve(input)
    model = scorer if isinstance(scorer, Scorer) else Scorer.load(scorer)  # fails early, on the driver
    next(iter_tables(source.sliced(limit=1), 1, text_field), None)  # checks the text field on the first record
    label = os.fspath(out)
    fs, root = output_filesystem(label)
    check_output_folder(fs, root, label)
    created = fs.get_file_info(root).type == pafs.FileType.NotFound
    staging = f"{root}/.critiq-staging-{uuid.uuid4().hex[:12]}"
    options = ray.data.DataContext.get_current().execution_options
    preserve_order, options.preserve_order = options.preserve_order, True
    try:
        try:
            dataset = read_corpus(source)
        except (pa.ArrowException, ray.exceptions.RayError) as error:
            raise InputError(f"unreadable corpus: {error}", source=source.name) from error
        # one CPU stays free for the read and write tasks: actors holding every CPU would starve them
        actors = concurrency or max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
        scored = dataset.map_batches(
            ScorerUDF,
            fn_constructor_kwargs={"scorer": model, "text_field": text_field, "max_chars": max_chars},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        try:
            scored.write_parquet(staging, filesystem=fs, max_rows_per_file=shard_rows)
        except ray.exceptions.RayError as error:
            cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise CritiqError(f"scoring on Ray failed: {cause}") from error
        parts = sorted(
            (info.path for info in fs.get_file_info(pafs.FileSelector(staging)) if info.path.endswith(".parquet")),
            key=_write_order,
        )
        card = card or DatasetCard(title="Scored corpus", summary=f"`{source.name}` scored by critiq on Ray.")
        card.details.update(describe_scores(fs, parts))
        return finish_shards(fs, root, label, parts, split, card)
    finally:
        options.preserve_order = preserve_order
        if fs.get_file_info(staging).type != pafs.FileType.NotFound:
            fs.delete_dir(staging)
        if created:
            remove_if_empty(fs, root)


def _write_order(path: str) -> list[Any]:
    """Ray names files ``{uuid}_{task index}[_{file index}]``: numbers compare as numbers."""
    name = path.rsplit("/", 1)[-1]
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
