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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from critiq.data.models import Example, Pair, Point
from critiq.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_PREFERRED = {"a": "a", "b": "b", "A": "a", "B": "b"}


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
    rows = _rows(source, label)
    examples: list[Example] = []
    seen: dict[str, int] = {}
    truncated = 0
    for line, row in rows:
        example, cut = _parse_row(row, label, line, max_chars)
        truncated += cut
        if require_labels and _label_of(example) is None:
            raise InputError("row has no label (preferred / answer / label)", source=label, line=line)
        if example.id in seen:
            raise InputError(f"duplicate id {example.id!r} (first at line {seen[example.id]})", source=label, line=line)
        seen[example.id] = line
        if examples and type(example) is not type(examples[0]):
            raise InputError("mixes pairwise and pointwise rows", source=label, line=line)
        examples.append(example)
    if not examples:
        raise InputError("no rows", source=label)
    if truncated:
        log.warning("%s: truncated %d texts to %d characters (--max-chars)", label, truncated, max_chars)
    return examples


def load_pairs(source: str | Path | Any, **options: Any) -> list[Pair]:
    """Like :func:`load_examples` but refuses pointwise data."""
    examples = load_examples(source, **options)
    if not isinstance(examples[0], Pair):
        raise InputError("expected pairs ({a, b, preferred}), found pointwise rows", source=_describe(source))
    return examples  # type: ignore[return-value]


def iter_examples(path: str | Path, *, max_chars: int | None = None, text_field: str = "text") -> Iterator[Example]:
    """Stream examples from a JSONL file line by line (for corpora that do not fit in memory).

    ``text_field`` names the text column of pointwise rows. Bad rows and duplicate ids raise as in
    :func:`load_examples`; rows before them have already been yielded.
    """
    label = str(path)
    seen: set[str] = set()
    with _check_path(Path(path)).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(
                    f"not valid UTF-8 (byte 0x{raw[error.start]:02x})", source=label, line=number
                ) from None
            if not line.strip():
                continue
            row = _json_line(line, label, number)
            if text_field != "text" and text_field in row:
                row = {**row, "text": row[text_field]}
            example = _parse_row(row, label, number, max_chars)[0]
            if example.id in seen:
                raise InputError(f"duplicate id {example.id!r}", source=label, line=number)
            seen.add(example.id)
            yield example


def _label_of(example: Example) -> Any:
    return example.preferred if isinstance(example, Pair) else example.label


def _describe(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return type(source).__name__


def _check_path(path: Path) -> Path:
    if not path.exists():
        raise InputError("no such file", source=str(path))
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return path
        raise InputError("is a directory, expected a .jsonl, .json, .csv or .parquet file", source=str(path))
    if path.stat().st_size == 0:
        raise InputError("file is empty", source=str(path))
    return path


def _rows(source: Any, label: str) -> list[tuple[int, Mapping[str, Any]]]:
    if isinstance(source, (str, Path)):
        path = _check_path(Path(source))
        if path.is_dir():
            import datasets

            return list(enumerate(datasets.load_from_disk(str(path)), start=1))
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
        return list(enumerate(source.to_dict(orient="records"), start=1))
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, Mapping)):
        return list(enumerate(source, start=1))  # datasets.Dataset and lists of dicts iterate as rows
    raise InputError(f"cannot load examples from a {type(source).__name__}")


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


def _jsonl_rows(path: Path, label: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(_read_text(path, label).splitlines(), start=1):
        if line.strip():
            yield number, _json_line(line, label, number)


def _json_rows(path: Path, label: str) -> list[tuple[int, Mapping[str, Any]]]:
    try:
        data = json.loads(_read_text(path, label))
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg})", source=label, line=error.lineno) from None
    if isinstance(data, dict):
        data = data.get("data", data.get("examples", data.get("pairs")))
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects (or {'data': [...]})", source=label)
    for index, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise InputError(f"item {index} is not an object", source=label)
    return list(enumerate(data, start=1))


def _csv_rows(path: Path, label: str) -> list[tuple[int, Mapping[str, Any]]]:
    text = _read_text(path, label)
    reader = csv.DictReader(text.splitlines(keepends=True))
    # DictReader's line_num counts physical lines, so multi-line cells still give the right line.
    return [(reader.line_num, row) for row in reader]


def _parquet_rows(path: Path, label: str) -> list[tuple[int, Mapping[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for corrupt files
        raise InputError(f"unreadable parquet ({error})", source=label) from None
    return list(enumerate(table.to_pylist(), start=1))


def _truncate(text: Any, max_chars: int | None) -> tuple[Any, int]:
    if max_chars is not None and isinstance(text, str) and len(text) > max_chars:
        return text[:max_chars], 1
    return text, 0


def _parse_row(row: Mapping[str, Any], label: str, line: int, max_chars: int | None) -> tuple[Example, int]:
    row_id = row.get("id")
    row_id = f"{Path(label).stem}-{line}" if row_id in (None, "") else str(row_id)
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
        raise InputError(_reason(error), source=label, line=line) from None
    raise InputError(
        "unknown layout: expected {a, b, preferred}, {A, B, answer}, {chosen, rejected} or {text, label}",
        source=label,
        line=line,
    )


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
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip() in _PREFERRED:
        return _PREFERRED[value.strip()]
    raise ValueError(f"preferred must be 'a' or 'b', got {value!r}")


def _point_label(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
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


def example_gold(example: Example) -> str | None:
    """The human answer as a worker verdict: ``A``/``B`` for pairs, ``A`` (good) / ``B`` (poor) for points."""
    if isinstance(example, Pair):
        return None if example.preferred is None else example.preferred.upper()
    return None if example.label is None else ("A" if example.label == 1 else "B")


def texts_of(examples: Sequence[Example]) -> list[str]:
    """All texts in a list of examples (both sides of pairs)."""
    out: list[str] = []
    for example in examples:
        out.extend([example.a, example.b] if isinstance(example, Pair) else [example.text])
    return out
