"""A scored corpus as one Parquet file, written safely (corpora are read by :mod:`critiq.data.reader`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from critiq.data.shards import PartWriter, cast_to


@contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temporary path next to ``out``, renamed onto ``out`` when the block succeeds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


class ParquetSink(PartWriter):
    """Write Arrow batches to one Parquet file atomically; the schema may widen between batches.

    Batches go to a part while they fit its schema; a new column or type starts another part, and ``close`` merges
    the parts under the unified schema.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(pafs.LocalFileSystem(), tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.parts."))

    def close(self) -> None:
        """Merge the parts into ``out`` (atomically) and remove the work directory."""
        try:
            self.flush()
            self.close_part()
            gather_parquet([Path(p) for p in self.parts], self.out)
        finally:
            self.abort()

    def abort(self) -> None:
        super().abort()
        shutil.rmtree(self.staging, ignore_errors=True)


def gather_parquet(parts: list[Path], out: Path) -> int:
    """Concatenate Parquet ``parts`` into ``out`` under their unified schema; returns the row count."""
    parts = [p for p in parts if p.exists()]
    with atomic_path(out) as tmp:
        if len(parts) == 1:
            os.replace(parts[0], tmp)
            return int(pq.ParquetFile(tmp).metadata.num_rows)
        schemas = [pq.read_schema(p) for p in parts]
        if not schemas:
            pq.write_table(pa.table({}), tmp)
            return 0
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        rows = 0
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                for batch in pq.ParquetFile(part).iter_batches():
                    writer.write_table(cast_to(pa.Table.from_batches([batch]), schema))
                    rows += batch.num_rows
        return rows
