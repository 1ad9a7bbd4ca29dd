"""Load labelled pairs or points from files, datasets and DataFrames.

Accepted row layouts (detected per row, one layout per source):

* ``{a, b, preferred}`` — critiq's own (``preferred`` is ``a`` or ``b``);
* ``{A, B, answer}`` — the CritiQ reference layout (``answer`` is ``A`` or ``B``);
* ``{chosen, rejected}`` — reward-model layout; the chosen text goes to side ``a`` or ``b`` by a stable hash
  of the row id, so that labels are balanced;
* ``{text, label}`` — pointwise data (``label`` 0 or 1), or ``{text}`` alone for unlabelled points.

A bad row raises :class:`~critiq.errors.InputError` naming ``file:line`` and the reason; nothing is returned
half-loaded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from critiq.data.models import Example, Pair, Point
from critiq.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_PREFERRED = {"a": "a", "b": "b", "A": "a", "B": "b"}


class Loc(NamedTuple):
    """Where a row came from: ``number`` (1-based row or item, used for default ids) and, for text files, the
    physical ``line`` that error messages name (``file:line``); without one they name ``item N`` / ``row N``."""

    number: int
    line: int | None = None
    unit: str = "row"

    def describe(self) -> str:
        return f"line {self.line}" if self.line is not None else f"{self.unit} {self.number}"

    def error(self, reason: str, label: str) -> InputError:
        if self.line is not None:
            return InputError(reason, source=label, line=self.line)
        return InputError(f"{self.unit} {self.number}: {reason}", source=label)


class ScanResult(NamedTuple):
    """What :func:`scan_examples` found: the first example, the row count and how many texts were truncated."""

    first: Example
    count: int
    truncated: int


def load_examples(
    source: str | Path | Any,
    *,
    max_chars: int | None = None,
    require_labels: bool = False,
    name: str | None = None,
) -> list[Example]:
    """Load pairs or points from a path, a ``datasets.Dataset``, a pandas DataFrame or a list of dicts.

    ``max_chars`` truncates longer texts (with one warning). ``require_labels`` refuses unlabelled rows.
    """
    label = name or _describe(source)
    examples: list[Example] = []
    seen: dict[str, Loc] = {}
    truncated = 0
    for loc, row in _rows(source, label):
        example, cut = _parse_row(row, label, loc, max_chars)
        truncated += cut
        if require_labels and example.gold is None:
            raise loc.error("row has no label (preferred / answer / label)", label)
        _check_new(example, examples[0] if examples else None, seen, loc, label)
        examples.append(example)
    if not examples:
        raise InputError("no rows", source=label)
    _warn_truncated(label, truncated, max_chars)
    return examples


def load_pairs(source: str | Path | Any, **options: Any) -> list[Pair]:
    """Like :func:`load_examples` but refuses pointwise data."""
    examples = load_examples(source, **options)
    if not isinstance(examples[0], Pair):
        raise InputError("expected pairs ({a, b, preferred}), found pointwise rows", source=_describe(source))
    return examples  # type: ignore[return-value]


def iter_examples(
    path: str | Path, *, max_chars: int | None = None, text_field: str = "text", warn: bool = True
) -> Iterator[Example]:
    """Stream examples from a JSONL file line by line (for corpora that do not fit in memory).

    ``text_field`` names the text column of pointwise rows. Bad rows, duplicate ids and a mix of pairs and points
    raise as in :func:`load_examples`; rows before them have already been yielded (use :func:`scan_examples` first
    to check a whole file before writing anything). Truncation by ``max_chars`` is logged (once, at the first
    truncated text) unless ``warn`` is false. Other file types are loaded whole and yielded.
    """
    label = str(path)
    file = _check_path(Path(path))
    if file.is_dir() or file.suffix.lower() != ".jsonl":
        rows: Iterable[tuple[Loc, Mapping[str, Any]]] = _rows(file, label)
    else:
        rows = _stream_jsonl(file, label)
    seen: dict[str, Loc] = {}
    first: Example | None = None
    for loc, row in rows:
        if text_field != "text" and text_field in row:
            row = {**row, "text": row[text_field]}
        example, cut = _parse_row(row, label, loc, max_chars)
        if cut and warn:
            warn = False
            log.warning(
                "%s:%s: texts longer than %d characters are truncated (--max-chars)", label, loc.line, max_chars
            )
        _check_new(example, first, seen, loc, label)
        first = first or example
        yield example


def scan_examples(path: str | Path, *, max_chars: int | None = None, text_field: str = "text") -> ScanResult:
    """Read a whole file once without keeping it: every row is checked as :func:`iter_examples` would.

    Raises ``InputError`` (naming ``file:line``) for the first bad row, or for a file without rows; logs one warning
    when ``max_chars`` truncates texts. Run it before a streaming pass that writes output, so bad input leaves
    nothing half-written.
    """
    first: Example | None = None
    count = truncated = 0
    for example in iter_examples(path, max_chars=None, text_field=text_field, warn=False):
        first = first or example
        count += 1
        if max_chars is not None:
            texts = [example.a, example.b] if isinstance(example, Pair) else [example.text]
            truncated += sum(len(t) > max_chars for t in texts)
    if first is None:
        raise InputError("no rows", source=str(path))
    _warn_truncated(str(path), truncated, max_chars)
    return ScanResult(first, count, truncated)


def _stream_jsonl(path: Path, label: str) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise InputError(
                    f"not valid UTF-8 (byte 0x{raw[error.start]:02x})", source=label, line=number
                ) from None
            if line.strip():
                yield Loc(number, number, "line"), _json_line(line, label, number)


def _check_new(example: Example, first: Example | None, seen: dict[str, Loc], loc: Loc, label: str) -> None:
    """Refuse a repeated id, and a pointwise row among pairs (or the reverse)."""
    if example.id in seen:
        raise loc.error(f"duplicate id {example.id!r} (first at {seen[example.id].describe()})", label)
    seen[example.id] = loc
    if first is not None and type(example) is not type(first):
        kind = "pairwise" if isinstance(first, Pair) else "pointwise"
        raise loc.error(f"mixes pairwise and pointwise rows (the first row is {kind})", label)


def _warn_truncated(label: str, truncated: int, max_chars: int | None) -> None:
    if truncated:
        log.warning("%s: truncated %d texts to %d characters (--max-chars)", label, truncated, max_chars)


def _describe(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return type(source).__name__


def _check_path(path: Path) -> Path:
    if not path.exists():
        raise InputError("no such file", source=str(path))
    if path.is_dir():
        if (path / "dataset_info.json").exists() and (path / "state.json").exists():
            return path  # a datasets.Dataset saved with save_to_disk
        if (path / "dataset_dict.json").exists():
            splits = sorted(p.name for p in path.iterdir() if p.is_dir())
            raise InputError(
                f"holds a DatasetDict (splits: {', '.join(splits)}); pass the folder of one split", source=str(path)
            )
        raise InputError("is a directory, expected a .jsonl, .json, .csv or .parquet file", source=str(path))
    if path.stat().st_size == 0:
        raise InputError("file is empty", source=str(path))
    return path


def _rows(source: Any, label: str) -> list[tuple[Loc, Mapping[str, Any]]]:
    if isinstance(source, (str, Path)):
        path = _check_path(Path(source))
        if path.is_dir():
            import datasets

            try:
                dataset = datasets.load_from_disk(str(path))
            except Exception as error:  # datasets raises several types for damaged folders
                raise InputError(f"unreadable saved dataset ({str(error).splitlines()[0]})", source=label) from None
            return _numbered(dataset, "row", label)
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            return list(_jsonl_rows(path, label))
        if suffix == ".json":
            return _json_rows(path, label)
        if suffix == ".csv":
            return _csv_rows(path, label)
        if suffix == ".parquet":
            return _parquet_rows(path, label)
        raise InputError(
            f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}", source=label
        )
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # pandas DataFrame
        return _numbered(source.to_dict(orient="records"), "row", label)
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, Mapping)):
        return _numbered(source, "row", label)  # datasets.Dataset and lists of dicts iterate as rows
    raise InputError(f"cannot load examples from a {type(source).__name__}")


def _numbered(rows: Iterable[Any], unit: str, label: str) -> list[tuple[Loc, Mapping[str, Any]]]:
    out = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise Loc(number, None, unit).error(f"expected a mapping, got {type(row).__name__}", label)
        out.append((Loc(number, None, unit), row))
    return out


def _read_text(path: Path, label: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"not valid UTF-8 (byte 0x{data[error.start]:02x})", source=label, line=line) from None


def _json_line(line: str, label: str, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg})", source=label, line=number) from None
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {type(row).__name__}", source=label, line=number)
    return row


def _jsonl_rows(path: Path, label: str) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    for number, line in enumerate(_read_text(path, label).splitlines(), start=1):
        if line.strip():
            yield Loc(number, number, "line"), _json_line(line, label, number)


def _json_rows(path: Path, label: str) -> list[tuple[Loc, Mapping[str, Any]]]:
    text = _read_text(path, label)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg})", source=label, line=error.lineno) from None
    lines = json_item_lines(text) if isinstance(data, list) else None
    if isinstance(data, dict):
        data = data.get("data", data.get("examples", data.get("pairs")))
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects (or {'data': [...]})", source=label)
    rows = []
    for index, row in enumerate(data, start=1):
        loc = Loc(index, lines[index - 1] if lines else None, "item")
        if not isinstance(row, dict):
            raise loc.error(f"expected a JSON object, got {type(row).__name__}", label)
        rows.append((loc, row))
    return rows


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


def _csv_rows(path: Path, label: str) -> list[tuple[Loc, Mapping[str, Any]]]:
    text = _read_text(path, label)
    reader = csv.DictReader(text.splitlines(keepends=True))
    rows = []
    try:
        for number, row in enumerate(reader, start=1):
            # DictReader's line_num counts physical lines, so multi-line cells still give the (last) right line.
            loc = Loc(number, reader.line_num, "line")
            if None in row:
                raise loc.error(f"more fields than the header's {len(reader.fieldnames or [])}", label)
            rows.append((loc, row))
    except csv.Error as error:
        raise InputError(f"malformed CSV ({error})", source=label, line=reader.line_num) from None
    return rows


def _parquet_rows(path: Path, label: str) -> list[tuple[Loc, Mapping[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for corrupt files
        raise InputError(f"unreadable parquet ({error})", source=label) from None
    return _numbered(table.to_pylist(), "row", label)


def _truncate(text: Any, max_chars: int | None) -> tuple[Any, int]:
    if max_chars is not None and isinstance(text, str) and len(text) > max_chars:
        return text[:max_chars], 1
    return text, 0


def _is_nan(value: Any) -> bool:
    """How pandas fills missing cells."""
    return isinstance(value, float) and math.isnan(value)


def _missing(value: Any) -> bool:
    return value is None or value == "" or _is_nan(value)


def _parse_row(row: Mapping[str, Any], label: str, loc: Loc, max_chars: int | None) -> tuple[Example, int]:
    row = {key: None if _is_nan(value) else value for key, value in row.items()}
    row_id = row.get("id")
    row_id = f"{Path(label).stem}-{loc.number}" if _missing(row_id) else _id_text(row_id)
    extra = {k: v for k, v in row.items() if k not in _KNOWN}
    metadata = dict(row.get("metadata") or {}) | extra
    domain = row.get("domain") or None
    try:
        if "a" in row or "b" in row:
            return _pair(
                row_id, row.get("a"), row.get("b"), _preference(row.get("preferred")), domain, metadata, max_chars
            )
        if "A" in row or "B" in row:
            return _pair(
                row_id, row.get("A"), row.get("B"), _preference(row.get("answer")), domain, metadata, max_chars
            )
        if "chosen" in row or "rejected" in row:
            chosen, rejected = row.get("chosen"), row.get("rejected")
            flip = hashlib.blake2b(row_id.encode(), digest_size=1).digest()[0] & 1
            a, b = (rejected, chosen) if flip else (chosen, rejected)
            return _pair(row_id, a, b, "b" if flip else "a", domain, metadata, max_chars)
        if "text" in row:
            text, cut = _truncate(row.get("text"), max_chars)
            point = Point(
                id=row_id,
                text=_require_text(text, "text"),
                label=_point_label(row.get("label")),
                domain=domain,
                metadata=metadata,
            )
            return point, cut
    except (ValueError, ValidationError) as error:
        raise loc.error(_reason(error), label) from None
    raise loc.error(
        "unknown layout: expected {a, b, preferred}, {A, B, answer}, {chosen, rejected} or {text, label}", label
    )


def _id_text(value: Any) -> str:
    """Ids as text; a whole float (pandas turns an int column with gaps into floats) loses its ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_KNOWN = {"id", "a", "b", "preferred", "A", "B", "answer", "chosen", "rejected", "text", "label", "domain", "metadata"}


def _pair(
    row_id: str, a: Any, b: Any, preferred: str | None, domain: Any, metadata: dict[str, Any], max_chars: int | None
) -> tuple[Pair, int]:
    a, cut_a = _truncate(a, max_chars)
    b, cut_b = _truncate(b, max_chars)
    pair = Pair(
        id=row_id,
        a=_require_text(a, "a"),
        b=_require_text(b, "b"),
        preferred=preferred,  # type: ignore[arg-type]
        domain=domain,
        metadata=metadata,
    )
    return pair, cut_a + cut_b


def _require_text(value: Any, field: str) -> str:
    if value is None:
        raise ValueError(f"missing field {field!r}")
    if not isinstance(value, str):
        raise ValueError(f"field {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"field {field!r} is empty")
    return value


def _preference(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, str) and value.strip() in _PREFERRED:
        return _PREFERRED[value.strip()]
    raise ValueError(f"preferred must be 'a' or 'b', got {value!r}")


def _point_label(value: Any) -> int | None:
    if _missing(value):
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy booleans too
        return int(bool(value))
    if isinstance(value, float) and value in (0.0, 1.0):  # pandas: an int column with gaps becomes float
        return int(value)
    if str(value).strip() in ("0", "1"):
        return int(str(value).strip())
    raise ValueError(f"label must be 0 or 1, got {value!r}")


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(error)
