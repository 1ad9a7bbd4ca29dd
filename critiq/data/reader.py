"""The one reader of data sources: rows (for the loaders) or Arrow tables (for corpus scoring), streamed.

Text files (JSON Lines, JSON, CSV) are parsed here, with the place of each row (``file:line``); Parquet files,
saved datasets and ``datasets`` streams are read in Arrow batches. ``Source.skip`` and ``Source.limit`` are
applied while reading: skipped Parquet files are passed over by their footer's row count, and reading stops at the
limit without opening the files after it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

import pyarrow as pa

from critiq.data.sources import MAX_ROW_BYTES, DataFile, Source
from critiq.errors import InputError

log = logging.getLogger(__name__)


class Loc(NamedTuple):
    """Where a row came from: ``number`` (1-based in the whole source, used for default ids); for text files the
    physical ``line`` that messages name (``file:line``), else the ``position`` of the row or item in ``source``."""

    number: int
    line: int | None = None
    unit: str = "row"
    source: str = ""
    position: int | None = None

    def describe(self) -> str:
        return f"line {self.line}" if self.line is not None else f"{self.unit} {self.position or self.number}"

    def error(self, reason: str, label: str | None = None) -> InputError:
        where = self.source or label
        if self.line is not None:
            return InputError(reason, source=where, line=self.line)
        return InputError(f"{self.unit} {self.position or self.number}: {reason}", source=where)


Row = tuple[Loc, Mapping[str, Any]]


@dataclass
class Block:
    """Consecutive rows of one Arrow source: ``table``, whose first row is row ``index`` of ``source`` and row
    ``number`` of the whole source."""

    source: str
    number: int
    index: int
    table: pa.Table


class _Window:
    """Counts rows across the files of a source, passing over ``skip`` of them and stopping after ``limit``."""

    def __init__(self, skip: int, limit: int | None, max_row_bytes: int = MAX_ROW_BYTES) -> None:
        self.skip, self.left, self.number = skip, limit, 0
        self.max_row_bytes = max_row_bytes

    @property
    def done(self) -> bool:
        return self.left == 0

    def keep(self) -> bool:
        """Count one row; whether it is read."""
        self.number += 1
        if self.skip:
            self.skip -= 1
            return False
        if self.left is not None:
            self.left -= 1
        return True

    def span(self, rows: int) -> tuple[int, int]:
        """Count ``rows`` rows; the ``[start, stop)`` of them that are read."""
        start = min(self.skip, rows)
        stop = rows if self.left is None else min(rows, start + self.left)
        self.skip -= start
        if self.left is not None:
            self.left -= stop - start
        self.number += rows
        return start, stop


def iter_rows(source: Source, batch_size: int = 1024) -> Iterator[Row]:
    """Every row of ``source`` as a mapping, with its place; text files are read one row at a time."""
    for item in iter_items(source, batch_size):
        if isinstance(item, Block):
            for offset, row in enumerate(item.table.to_pylist()):
                yield Loc(item.number + offset, None, "row", item.source, item.index + offset), row
        else:
            yield item


def iter_tables(source: Source, batch_size: int, text_field: str | None) -> Iterator[pa.Table]:
    """Arrow tables of at most ``batch_size`` rows; checks that ``text_field`` (unless None) holds text in every
    row."""
    rows: list[Row] = []
    for item in iter_items(source, batch_size):
        if isinstance(item, Block):
            if rows:
                yield _rows_to_table(rows, text_field)
                rows = []
            yield _check_table(item.table, text_field, item)
            continue
        rows.append(item)
        if len(rows) >= batch_size:
            yield _rows_to_table(rows, text_field)
            rows = []
    if rows:
        yield _rows_to_table(rows, text_field)


def iter_items(source: Source, batch_size: int = 1024) -> Iterator[Row | Block]:
    """The rows of ``source``, sliced by its ``skip`` and ``limit``: parsed rows of text files, Arrow blocks of at
    most ``batch_size`` rows of the others."""
    window = _Window(source.skip, source.limit, source.max_row_bytes)
    if source.files:
        for file in source.files:
            if window.done:
                return
            if file.format == "parquet":
                yield from _parquet_blocks(file, window, batch_size)
            else:
                yield from _TEXT_READERS[file.format](file, window)
    elif source.saved is not None:
        yield from _dataset_blocks(_load_saved(source), source.name, window, batch_size)
    elif source.dataset is not None:
        yield from _dataset_blocks(source.dataset, source.name, window, batch_size)
    elif source.records is not None:
        yield from _record_rows(source, window)


# ------------------------------------------------------------------------------------------------ text files
@contextmanager
def _open(file: DataFile) -> Iterator[IO[bytes]]:
    try:
        handle = file.fs.open(file.path, "rb", compression=file.compression)
    except OSError as error:
        raise InputError(f"cannot open ({error})", source=file.label) from None
    with handle:
        yield handle


def _decode(raw: bytes, label: str, line: int, first: bool) -> str:
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        raise InputError(f"not valid UTF-8 (byte 0x{byte:02x})", source=label, line=line) from None


def _read_text(file: DataFile) -> str:
    with _open(file) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"not valid UTF-8 (byte 0x{data[error.start]:02x})", source=file.label, line=line) from None


def _json_line(line: str, label: str, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg})", source=label, line=number) from None
    except RecursionError:
        raise InputError("malformed JSON (nested too deep)", source=label, line=number) from None
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {type(row).__name__}", source=label, line=number)
    return row


def _too_long(label: str, line: int, cap: int) -> InputError:
    return InputError(
        f"a row longer than {cap} bytes (the cap on one row; raise it with max_row_bytes=)", source=label, line=line
    )


def _jsonl_rows(file: DataFile, window: _Window) -> Iterator[Row]:
    """JSON Lines, read line by line: a skipped line is counted, not parsed; no line is read past ``cap`` bytes."""
    cap = window.max_row_bytes
    with _open(file) as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(cap + 1), b""), start=1):
            if window.done:
                return
            if len(raw) > cap:
                raise _too_long(file.label, number, cap)
            line = _decode(raw, file.label, number, number == 1)
            if line.strip() and window.keep():
                yield Loc(window.number, number, "line", file.label), _json_line(line, file.label, number)


def _lines_rows(text: str, file: DataFile, window: _Window) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if window.done:
            return
        if line.strip() and window.keep():
            yield Loc(window.number, number, "line", file.label), _json_line(line, file.label, number)


def _json_rows(file: DataFile, window: _Window) -> Iterator[Row]:
    """A ``.json`` file: one array of objects, ``{"data" | "examples" | "pairs": [...]}``, or JSON Lines."""
    text = _read_text(file)
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError("malformed JSON (nested too deep)", source=file.label, line=1) from None
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and not text.lstrip().startswith("["):
            yield from _lines_rows(text, file, window)  # JSON Lines in a .json file
            return
        raise InputError(f"malformed JSON ({error.msg})", source=file.label, line=error.lineno) from None
    lines = json_item_lines(text) if isinstance(data, list) else None
    if isinstance(data, dict):
        data = data.get("data", data.get("examples", data.get("pairs")))
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects (or {'data': [...]})", source=file.label)
    for index, row in enumerate(data, start=1):
        if window.done:
            return
        if not window.keep():
            continue
        loc = Loc(window.number, lines[index - 1] if lines else None, "item", file.label, index)
        if not isinstance(row, dict):
            raise loc.error(f"expected a JSON object, got {type(row).__name__}")
        yield loc, row


def json_item_lines(text: str) -> list[int] | None:
    """The line on which each item of a top-level JSON list starts (the text is known to be valid JSON)."""
    decoder = json.JSONDecoder()
    position, line, counted = 0, 1, 0
    lines: list[int] = []

    def skip(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n\ufeff":
            at += 1
        return at

    position = skip(position)
    if position >= len(text) or text[position] != "[":
        return None
    position = skip(position + 1)
    while position < len(text) and text[position] != "]":
        line += text.count("\n", counted, position)
        counted = position
        lines.append(line)
        _, position = decoder.raw_decode(text, position)
        position = skip(position)
        if position < len(text) and text[position] == ",":
            position = skip(position + 1)
    return lines


def _csv_rows(file: DataFile, window: _Window) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(_read_text(file), newline=""))
    csv.field_size_limit(max(window.max_row_bytes, 2**17))  # csv's own cap on one field (default 128 KiB)
    try:
        for row in reader:
            if window.done:
                return
            if not window.keep():
                continue
            # DictReader's line_num counts physical lines, so multi-line cells still give the (last) right line
            loc = Loc(window.number, reader.line_num, "line", file.label)
            if None in row:
                raise loc.error(f"more fields than the header's {len(reader.fieldnames or [])}")
            yield loc, row
    except csv.Error as error:
        raise InputError(f"malformed CSV ({error})", source=file.label, line=reader.line_num) from None


_TEXT_READERS = {"jsonl": _jsonl_rows, "json": _json_rows, "csv": _csv_rows}


def _record_rows(source: Source, window: _Window) -> Iterator[Row]:
    assert source.records is not None
    for row in source.records:
        if window.done:
            return
        if not window.keep():
            continue
        loc = Loc(window.number, None, "row", source.name)
        if not isinstance(row, Mapping):
            raise loc.error(f"expected a mapping, got {type(row).__name__}")
        yield loc, row


# ------------------------------------------------------------------------------------------------ Arrow sources
def _parquet_blocks(file: DataFile, window: _Window, batch_size: int) -> Iterator[Block]:
    import pyarrow.parquet as pq

    try:
        handle = file.fs.open(file.path, "rb")
    except OSError as error:
        raise InputError(f"cannot open ({error})", source=file.label) from None
    with handle:
        try:
            reader = pq.ParquetFile(handle)
        except (OSError, pa.ArrowException) as error:
            raise InputError(f"unreadable parquet ({error})", source=file.label) from None
        rows = reader.metadata.num_rows
        if window.skip >= rows:  # the whole file is skipped: its data is never read
            window.span(rows)
            return
        yield from _table_blocks(_batches(reader, file.label, batch_size), file.label, window)


def _batches(reader: Any, label: str, batch_size: int) -> Iterator[pa.Table]:
    try:
        for batch in reader.iter_batches(batch_size=batch_size):
            yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"unreadable parquet ({error})", source=label) from None


def _table_blocks(tables: Iterator[pa.Table], label: str, window: _Window) -> Iterator[Block]:
    index = 1
    for table in tables:
        if window.done:
            return
        first = window.number + 1
        start, stop = window.span(table.num_rows)
        if stop > start:
            yield Block(label, first + start, index + start, table.slice(start, stop - start))
        index += table.num_rows


def _load_saved(source: Source) -> Any:
    import datasets

    try:
        return datasets.load_from_disk(str(source.saved))
    except (FileNotFoundError, ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"unreadable saved dataset ({reason})", source=source.name) from None


def _dataset_blocks(dataset: Any, label: str, window: _Window, batch_size: int) -> Iterator[Block]:
    def tables() -> Iterator[pa.Table]:
        try:
            yield from dataset.with_format("arrow").iter(batch_size=batch_size)
        except (OSError, ValueError, pa.ArrowException) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(f"unreadable dataset ({reason})", source=label) from None

    yield from _table_blocks(tables(), label, window)


# ------------------------------------------------------------------------------------------------ corpus checks
def _columns(names: list[str]) -> str:
    return ", ".join(names) or "none"


def _rows_to_table(rows: list[Row], text_field: str | None) -> pa.Table:
    for loc, record in rows:
        value = None if text_field is None else record.get(text_field)
        if text_field is not None and not isinstance(value, str):
            problem = "missing" if text_field not in record else f"not text ({type(value).__name__})"
            raise loc.error(f"field '{text_field}' is {problem} (fields: {_columns(list(record))})")
    keys = list(dict.fromkeys(key for _, record in rows for key in record))  # from_pylist reads the first row's keys
    try:
        return pa.Table.from_pydict({key: [record.get(key) for _, record in rows] for key in keys})
    except (pa.ArrowException, TypeError, ValueError) as error:
        first, last = rows[0][0], rows[-1][0]
        raise InputError(
            f"{first.describe()} to {last.describe()}: inconsistent field types: {error}", source=first.source
        ) from None


def _check_table(table: pa.Table, text_field: str | None, block: Block) -> pa.Table:
    if text_field is None:
        return table
    if text_field not in table.column_names:
        raise InputError(f"no field '{text_field}' (fields: {_columns(table.column_names)})", source=block.source)
    column = table.column(text_field)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_null(column.type)):
        raise InputError(f"field '{text_field}' holds {column.type}, not text", source=block.source)
    if column.null_count:
        row = block.index + column.to_pylist().index(None)
        raise InputError(f"row {row}: field '{text_field}' is null", source=block.source)
    return table
