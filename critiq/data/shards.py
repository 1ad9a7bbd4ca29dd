"""Write a dataset as the Hub lays one out: ``data/{split}-00000-of-0000N.parquet`` shards and a dataset card.

``datasets.load_dataset(out)`` reads the folder back and ``hf upload ORG/NAME OUT --repo-type=dataset`` publishes it.
``out`` is a local folder or a pyarrow filesystem URI (``s3://``, ``gs://``, ``file://``; other fsspec protocols
through fsspec). Shards are written into a staging folder inside ``out``; when the writer
closes, a local output is rebuilt beside ``out`` (other splits hard-linked) and swapped in whole, so a kill leaves the
old set or the new one (a remote one gets its shards moved, the card last); a failed run leaves earlier output as
it was.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel
from typing_extensions import Self

from critiq.data.cards import MARKER, DatasetCard, render_card
from critiq.errors import CritiqError
from critiq.io import replace_dir, staging_dir
from critiq.lock import OutputLock

log = logging.getLogger(__name__)

CARD = "README.md"
DEFAULT_SHARD_ROWS = 100_000


class ShardSummary(BaseModel):
    """What a sharded write produced."""

    out: str
    split: str
    rows: int
    shards: list[str]
    columns: list[str]


def output_filesystem(out: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path on it for a local path or a URI."""
    text = os.fspath(out)
    if "://" not in text:
        return pafs.LocalFileSystem(), os.path.abspath(text)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        import fsspec

        try:
            fsspec_fs, path = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as error:
            raise CritiqError(f"out={text}: no filesystem for this URI ({error})") from None
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_fs))
    return fs, path.rstrip("/")


def cast_to(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` under ``schema``: columns cast, missing ones as nulls (raises when a cast fails)."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table | None:
    """``table`` under ``schema`` (missing columns as nulls), or None when it has other columns or types."""
    if table.schema == schema:
        return table
    if not set(table.column_names) <= set(schema.names):
        return None
    try:
        return cast_to(table, schema)
    except pa.ArrowException:
        return None


class PartWriter:
    """Append Arrow tables (or records) to Parquet parts in ``staging`` on ``fs``: a part holds at most
    ``part_rows`` rows, and a batch with new columns or types starts a new part. Subclasses finish the parts."""

    def __init__(self, fs: pafs.FileSystem, staging: str, part_rows: int | None = None) -> None:
        if part_rows is not None and part_rows <= 0:
            raise CritiqError("`shard_rows` must be > 0")
        self.fs, self.staging, self.part_rows = fs, staging, part_rows
        self.fs.create_dir(staging, recursive=True)
        self.parts: list[str] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._in_part = 0
        self._pending: list[Mapping[str, Any]] = []

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table``."""
        while table.num_rows:
            if self._writer is not None:
                fitted = conform(table, self._writer.schema)
                if fitted is None or self._full():
                    self.close_part()
                else:
                    table = fitted
            if self._writer is None:
                self.parts.append(f"{self.staging}/part-{len(self.parts):05d}.parquet")
                self._writer = pq.ParquetWriter(self.parts[-1], table.schema, filesystem=self.fs)
                self._in_part = 0
            take = table.num_rows if self.part_rows is None else min(table.num_rows, self.part_rows - self._in_part)
            self._writer.write_table(table.slice(0, take))
            self._in_part += take
            self.rows += take
            table = table.slice(take)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record; records are written in batches (for pipelines that finish rows one at a time)."""
        self._pending.append(record)
        if len(self._pending) >= min(self.part_rows or 1024, 1024):
            self.flush()

    def flush(self) -> None:
        """Write the records given to :meth:`append` so far."""
        if self._pending:
            keys = list(dict.fromkeys(key for record in self._pending for key in record))
            table = pa.Table.from_pydict({key: [record.get(key) for record in self._pending] for key in keys})
            self._pending = []
            self.write(table)

    def close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        """Drop what was written."""
        self._pending = []
        self.close_part()
        if self.fs.get_file_info(self.staging).type != pafs.FileType.NotFound:
            self.fs.delete_dir(self.staging)

    def _full(self) -> bool:
        return self.part_rows is not None and self._in_part >= self.part_rows

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self.abort()


class ShardWriter(PartWriter):
    """A folder in Hub layout: shards of at most ``shard_rows`` rows, named and carded by :meth:`close`. Earlier
    output in ``out`` stays as it was until then.

    Use as a context manager (an exception aborts), ending with :meth:`close`::

        with ShardWriter("out/", shard_rows=50_000) as writer:
            for table in tables:
                writer.write(table)
            writer.close(DatasetCard(title="Scored corpus", summary="..."))
    """

    def __init__(self, out: str | os.PathLike[str], *, shard_rows: int = DEFAULT_SHARD_ROWS, split: str = "train"):
        if not re.fullmatch(r"[A-Za-z0-9_.]+", split):
            raise CritiqError(f"split {split!r}: use letters, digits, '_' and '.'")
        if shard_rows <= 0:
            raise CritiqError("`shard_rows` must be > 0")
        self.out, self.split = os.fspath(out), split
        fs, self.root = output_filesystem(out)
        # one process per local output folder (critiq.lock); a remote store has no such lock
        self._lock = OutputLock(self.root) if isinstance(fs, pafs.LocalFileSystem) else None
        try:
            check_output_folder(fs, self.root, self.out)
        except BaseException:
            self._release()
            raise
        self._created = fs.get_file_info(self.root).type == pafs.FileType.NotFound
        super().__init__(fs, f"{self.root}/.critiq-staging-{uuid.uuid4().hex[:12]}", shard_rows)

    def close(self, card: DatasetCard) -> ShardSummary:
        """Name the shards as the Hub does, write the card, remove the staging folder."""
        try:
            self.flush()
            self.close_part()
            summary = finish_shards(self.fs, self.root, self.out, self.parts, self.split, card)
            self._created = False
            return summary
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop what was written; a folder this writer created is removed again."""
        super().abort()
        if self._created:
            remove_if_empty(self.fs, self.root)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()


def check_output_folder(fs: pafs.FileSystem, root: str, label: str) -> None:
    """Refuse an ``out`` that is a file, or a folder with other content than an earlier critiq output."""
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise CritiqError(f"out={label}: is a file; name a folder for the shards (or a .parquet file)")
    if info.type != pafs.FileType.Directory:
        return
    entries = fs.get_file_info(pafs.FileSelector(root))
    if not entries or is_critiq_output(fs, root):
        return
    raise CritiqError(f"out={label}: the folder holds other files; name a new folder (or an earlier critiq output)")


def remove_if_empty(fs: pafs.FileSystem, root: str) -> None:
    """Remove the folder ``root`` if it exists and is empty (a failed run leaves no empty folder behind)."""
    if fs.get_file_info(root).type == pafs.FileType.Directory and not fs.get_file_info(pafs.FileSelector(root)):
        fs.delete_dir(root)


def is_critiq_output(fs: pafs.FileSystem, root: str) -> bool:
    try:
        with fs.open_input_stream(f"{root}/{CARD}") as handle:
            return MARKER in handle.read(4096).decode("utf-8", "replace")
    except (FileNotFoundError, OSError):
        return False


def finish_shards(
    fs: pafs.FileSystem, root: str, label: str, parts: list[str], split: str, card: DatasetCard
) -> ShardSummary:
    """Move ``parts`` (in order) to ``root/data/{split}-{i:05d}-of-{n:05d}.parquet`` under one schema, drop this
    split's older shards, and write the card."""
    parts = [p for p in parts if pq.read_metadata(p, filesystem=fs).num_rows > 0] or parts[:1]
    schema = _unify(fs, parts)
    # on a local disk the new set is built beside ``root`` (other splits hard-linked in) and swapped into place,
    # so a kill leaves the old shard set and card or the new ones; a remote store gets them one by one
    staged = _stage_local(root, split) if isinstance(fs, pafs.LocalFileSystem) else None
    target = str(staged) if staged is not None else root
    data = f"{target}/data"
    fs.create_dir(data, recursive=True)
    names = [f"{split}-{i:05d}-of-{len(parts):05d}.parquet" for i in range(len(parts))]
    stale = [
        entry.path
        for entry in fs.get_file_info(pafs.FileSelector(data))
        if entry.base_name.startswith(f"{split}-") and entry.base_name not in names
    ]
    for part, name in zip(parts, names, strict=True):
        fs.move(part, f"{data}/{name}")
    for path in stale:
        fs.delete_file(path)
    rows = [pq.read_metadata(f"{data}/{name}", filesystem=fs).num_rows for name in names]
    summary = ShardSummary(out=label, split=split, rows=sum(rows), shards=names, columns=schema.names if schema else [])
    with fs.open_output_stream(f"{target}/{CARD}") as handle:
        handle.write(render_card(card, summary.split, list(zip(names, rows, strict=True)), schema).encode("utf-8"))
    if staged is not None:
        replace_dir(staged, Path(root))
    log.info("wrote %d rows in %d shards -> %s", summary.rows, len(names), label)
    return summary


def _stage_local(root: str, split: str) -> Path:
    """A folder beside ``root`` holding hard links to everything of ``root`` but ``split``'s shards and the card."""
    staged = staging_dir(root)
    old = Path(root)
    for path in old.rglob("*"):
        relative = path.relative_to(old)
        if relative.parts[0].startswith(".critiq-staging-") or relative == Path(CARD):
            continue
        if len(relative.parts) == 2 and relative.parts[0] == "data" and relative.name.startswith(f"{split}-"):
            continue
        if path.is_dir():
            (staged / relative).mkdir(parents=True, exist_ok=True)
        else:
            (staged / relative).parent.mkdir(parents=True, exist_ok=True)
            os.link(path, staged / relative)
    return staged


def _unify(fs: pafs.FileSystem, parts: list[str]) -> pa.Schema | None:
    """One schema for all parts; a part written under another is rewritten (rare: a column appeared mid-way)."""
    schemas = [pq.read_schema(p, filesystem=fs) for p in parts]
    if not schemas:
        return None
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    for part, schema in zip(parts, schemas, strict=True):
        if schema != unified:
            widened = f"{part}.widened"
            with pq.ParquetWriter(widened, unified, filesystem=fs) as writer:
                for batch in pq.ParquetFile(fs.open_input_file(part)).iter_batches():
                    writer.write_table(cast_to(pa.Table.from_batches([batch]), unified))
            fs.move(widened, part)
    return unified


def jsonl_to_shards(
    jsonl: str | os.PathLike[str],
    out: str | os.PathLike[str],
    card: DatasetCard,
    *,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    split: str = "train",
) -> ShardSummary:
    """Convert a finished JSON Lines output (``annotate``'s records) into Parquet shards in Hub layout at ``out``."""
    from critiq.io import iter_jsonl

    with ShardWriter(out, shard_rows=shard_rows, split=split) as writer:
        try:
            for record in iter_jsonl(jsonl):
                writer.append(record)
            return writer.close(card)
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise CritiqError(f"{os.fspath(jsonl)}: records do not fit one Parquet schema ({error})") from None
