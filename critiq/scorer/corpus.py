"""Corpus I/O for scoring: read JSONL/JSON/Parquet/HF datasets in Arrow batches, write Parquet safely."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from critiq.errors import InputError

logger = logging.getLogger(__name__)

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


def describe(source: Any) -> str:
    """A short name for a corpus source, for messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return type(source).__name__


def is_hf_dataset(source: Any) -> bool:
    return type(source).__name__ == "Dataset" and hasattr(source, "with_format")


def load_hf_dir(path: Path) -> Any:
    """``datasets.load_from_disk`` for one split; a DatasetDict is an error naming its splits."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as error:
        raise InputError(f"not a saved datasets.Dataset: {error}", source=str(path)) from error
    if isinstance(loaded, datasets.DatasetDict):
        raise InputError(f"holds splits {', '.join(loaded)}; pass one split's directory", source=str(path))
    return loaded


def json_is_array(path: Path) -> bool:
    """Whether a .json file holds one JSON array (else it is read as JSON Lines)."""
    with path.open("rb") as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped.startswith(b"[")
    return False


def iter_tables(source: Any, batch_size: int, text_field: str) -> Iterator[pa.Table]:
    """Arrow tables of at most ``batch_size`` rows; checks that ``text_field`` holds strings."""
    if is_hf_dataset(source):
        yield from _iter_dataset(source, batch_size, text_field, "dataset")
        return
    path = Path(source)
    if path.is_dir():
        yield from _iter_dataset(load_hf_dir(path), batch_size, text_field, str(path))
    elif not path.is_file():
        raise InputError("no such file or directory", source=str(path))
    elif path.suffix == ".parquet":
        yield from _iter_parquet(path, batch_size, text_field)
    elif path.suffix in JSON_SUFFIXES:
        if path.suffix == ".json" and json_is_array(path):
            yield from _iter_json_array(path, batch_size, text_field)
        else:
            yield from _iter_jsonl(path, batch_size, text_field)
    else:
        raise InputError(
            "unsupported corpus format; use .jsonl, .json, .parquet or a datasets directory", source=str(path)
        )


def _check_table(table: pa.Table, text_field: str, source: str, first_row: int) -> pa.Table:
    if text_field not in table.column_names:
        raise InputError(f"no field '{text_field}' (fields: {', '.join(table.column_names)})", source=source)
    column = table.column(text_field)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_null(column.type)):
        raise InputError(f"field '{text_field}' holds {column.type}, not text", source=source)
    if column.null_count:
        row = first_row + column.to_pylist().index(None)
        raise InputError(f"row {row}: field '{text_field}' is null", source=source)
    return table


def _iter_dataset(dataset: Any, batch_size: int, text_field: str, source: str) -> Iterator[pa.Table]:
    if text_field not in dataset.column_names:
        raise InputError(f"no field '{text_field}' (fields: {', '.join(dataset.column_names)})", source=source)
    row = 0
    for table in dataset.with_format("arrow").iter(batch_size=batch_size):
        yield _check_table(table, text_field, source, row)
        row += table.num_rows


def _iter_parquet(path: Path, batch_size: int, text_field: str) -> Iterator[pa.Table]:
    try:
        reader = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"unreadable parquet: {error}", source=str(path)) from error
    if text_field not in reader.schema_arrow.names:
        raise InputError(f"no field '{text_field}' (fields: {', '.join(reader.schema_arrow.names)})", source=str(path))
    row = 0
    for batch in reader.iter_batches(batch_size=batch_size):
        table = pa.Table.from_batches([batch])
        yield _check_table(table, text_field, str(path), row)
        row += table.num_rows


def _rows_to_table(rows: list[dict[str, Any]], lines: list[int], text_field: str, path: Path) -> pa.Table:
    for record, line in zip(rows, lines, strict=True):
        if not isinstance(record.get(text_field), str):
            problem = "missing" if text_field not in record else f"not text ({type(record[text_field]).__name__})"
            raise InputError(f"field '{text_field}' is {problem}", source=str(path), line=line)
    keys = list(dict.fromkeys(key for record in rows for key in record))  # from_pylist reads the first row's keys only
    try:
        return pa.Table.from_pydict({key: [record.get(key) for record in rows] for key in keys})
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise InputError(
            f"lines {lines[0]}-{lines[-1]}: inconsistent field types: {error}", source=str(path)
        ) from error


def _iter_jsonl(path: Path, batch_size: int, text_field: str) -> Iterator[pa.Table]:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(f"invalid JSON: {error.msg}", source=str(path), line=number) from error
                if not isinstance(record, dict):
                    raise InputError("expected a JSON object", source=str(path), line=number)
                rows.append(record)
                lines.append(number)
                if len(rows) >= batch_size:
                    yield _rows_to_table(rows, lines, text_field, path)
                    rows, lines = [], []
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text: {error.reason}", source=str(path)) from error
    if rows:
        yield _rows_to_table(rows, lines, text_field, path)


def _iter_json_array(path: Path, batch_size: int, text_field: str) -> Iterator[pa.Table]:
    logger.info("%s is one JSON array: it is loaded whole; JSON Lines streams", path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"invalid JSON: {error}", source=str(path)) from error
    if not all(isinstance(r, dict) for r in records):
        raise InputError("expected an array of JSON objects", source=str(path))
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        yield _rows_to_table(chunk, list(range(start, start + len(chunk))), text_field, path)


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


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class ParquetSink:
    """Write Arrow batches to one Parquet file atomically; the schema may widen between batches.

    Batches go straight to the file while they fit its schema; on a new column or type the written
    part is set aside and all parts are merged under the unified schema at ``close``.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._workdir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.parts."))
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is not None:
            schema = self._writer.schema
            fits = set(table.column_names) <= set(schema.names)
            if fits and table.schema != schema:
                try:
                    table = _conform(table, schema)
                except pa.ArrowException:
                    fits = False
            if not fits:
                self._writer.close()
                self._writer = None
        if self._writer is None:
            part = self._workdir / f"part-{len(self._parts):05d}.parquet"
            self._parts.append(part)
            self._writer = pq.ParquetWriter(part, table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        """Merge the parts into ``out`` (atomically) and remove the work directory."""
        try:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            gather_parquet(self._parts, self.out)
        finally:
            self.abort()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for part in self._workdir.glob("*"):
            part.unlink(missing_ok=True)
        if self._workdir.exists():
            self._workdir.rmdir()


def gather_parquet(parts: list[Path], out: Path, *, index_field: str | None = None) -> int:
    """Concatenate Parquet ``parts`` into ``out`` under their unified schema; returns the row count.

    ``index_field``: append an int64 column holding the running row number.
    """
    parts = [p for p in parts if p.exists()]
    with atomic_path(out) as tmp:
        if len(parts) == 1 and index_field is None:
            os.replace(parts[0], tmp)
            return pq.ParquetFile(tmp).metadata.num_rows
        schemas = [pq.read_schema(p) for p in parts]
        if not schemas:
            pq.write_table(pa.table({}), tmp)
            return 0
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        if index_field is not None:
            schema = schema.append(pa.field(index_field, pa.int64()))
        rows = 0
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                for batch in pq.ParquetFile(part).iter_batches():
                    table = pa.Table.from_batches([batch])
                    if index_field is not None:
                        numbers = pa.array(range(rows, rows + table.num_rows), type=pa.int64())
                        table = table.append_column(index_field, numbers)
                    writer.write_table(_conform(table, schema))
                    rows += table.num_rows
        return rows
