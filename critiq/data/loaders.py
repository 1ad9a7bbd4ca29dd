"""Load labelled pairs or points from any data source (see :mod:`critiq.data.sources`), DataFrames and lists.

Accepted row layouts (detected per row, one layout per source):

* ``{a, b, preferred}`` — critiq's own (``preferred`` is ``a`` or ``b``);
* ``{A, B, answer}`` — the CritiQ reference layout (``answer`` is ``A`` or ``B``);
* ``{chosen, rejected}`` — reward-model layout; the chosen text goes to side ``a`` or ``b`` by a stable hash
  of the row id, so that labels are balanced;
* ``{text, label}`` — pointwise data (``label`` 0 or 1), or ``{text}`` alone for unlabelled points.

A bad row raises :class:`~critiq.errors.InputError` naming ``file:line`` (or the row of a shard) and the reason;
nothing is returned half-loaded.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from critiq.data.models import Example, Pair, Point, Preference
from critiq.data.reader import Loc, iter_rows, json_item_lines
from critiq.data.sources import Source, resolve
from critiq.errors import InputError

__all__ = ["Loc", "ScanResult", "iter_examples", "json_item_lines", "load_examples", "load_pairs", "scan_examples"]

log = logging.getLogger(__name__)

_PREFERRED: dict[str, Preference] = {"a": "a", "b": "b", "A": "a", "B": "b"}


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_examples` found: the first example, the row count and how many texts were truncated."""

    first: Example
    count: int
    truncated: int


def load_examples(
    source: Any,
    *,
    max_chars: int | None = None,
    require_labels: bool = False,
    name: str | None = None,
) -> list[Example]:
    """Load pairs or points from a dataset name or :class:`~critiq.data.sources.Source` (a file, a folder, a glob,
    ``hf://ORG/NAME``, an fsspec URI), a ``datasets.Dataset``, a pandas DataFrame or a list of dicts.

    ``max_chars`` truncates longer texts (with one warning). ``require_labels`` refuses unlabelled rows. ``name``
    labels in-memory data in messages.
    """
    resolved = resolve(source, name=name)
    examples: list[Example] = []
    seen: dict[str, Loc] = {}
    truncated = 0
    for loc, row in iter_rows(resolved):
        example, cut = _parse_row(row, resolved.stem, loc, max_chars)
        truncated += cut
        if require_labels and example.gold is None:
            raise loc.error("row has no label (preferred / answer / label)")
        _check_new(example, examples[0] if examples else None, seen, loc)
        examples.append(example)
    if not examples:
        raise InputError("no rows", source=resolved.name)
    _warn_truncated(resolved.name, truncated, max_chars)
    return examples


def load_pairs(source: Any, **options: Any) -> list[Pair]:
    """Like :func:`load_examples` but refuses pointwise data."""
    examples = load_examples(source, **options)
    if not isinstance(examples[0], Pair):
        raise InputError("expected pairs ({a, b, preferred}), found pointwise rows", source=_name(source, options))
    return [example for example in examples if isinstance(example, Pair)]  # all of them: a mix is refused


def iter_examples(
    source: Any, *, max_chars: int | None = None, text_field: str = "text", warn: bool = True
) -> Iterator[Example]:
    """Stream examples from any source row by row (for corpora that do not fit in memory).

    ``text_field`` names the text column of pointwise rows. Bad rows, duplicate ids and a mix of pairs and points
    raise as in :func:`load_examples`; rows before them have already been yielded (use :func:`scan_examples` first
    to check a whole source before writing anything). Truncation by ``max_chars`` is logged (once, at the first
    truncated text) unless ``warn`` is false.
    """
    resolved = resolve(source)
    seen: dict[str, Loc] = {}
    first: Example | None = None
    for loc, row in iter_rows(resolved):
        if text_field != "text" and text_field in row:
            row = {**row, "text": row[text_field]}
        example, cut = _parse_row(row, resolved.stem, loc, max_chars)
        if cut and warn:
            warn = False
            where = f"{loc.source}:{loc.line}" if loc.line is not None else f"{loc.source}: {loc.describe()}"
            log.warning("%s: texts longer than %d characters are truncated (`max_chars`)", where, max_chars)
        _check_new(example, first, seen, loc)
        first = first or example
        yield example


def scan_examples(source: Any, *, max_chars: int | None = None, text_field: str = "text") -> ScanResult:
    """Read a whole source once without keeping it: every row is checked as :func:`iter_examples` would.

    Raises ``InputError`` (naming ``file:line``) for the first bad row, or for a source without rows; logs one
    warning when ``max_chars`` truncates texts. Run it before a streaming pass that writes output, so bad input
    leaves nothing half-written.
    """
    resolved = resolve(source)
    first: Example | None = None
    count = truncated = 0
    for example in iter_examples(resolved, max_chars=None, text_field=text_field, warn=False):
        first = first or example
        count += 1
        if max_chars is not None:
            texts = [example.a, example.b] if isinstance(example, Pair) else [example.text]
            truncated += sum(len(t) > max_chars for t in texts)
    if first is None:
        raise InputError("no rows", source=resolved.name)
    _warn_truncated(resolved.name, truncated, max_chars)
    return ScanResult(first, count, truncated)


def stream_examples(
    source: Any, *, max_chars: int | None = None, text_field: str = "text"
) -> tuple[Example, Iterator[Example]]:
    """The first example and a stream of all of them, for commands that write as they read.

    A source on this machine is scanned whole first (:func:`scan_examples`), so that a bad row fails before anything
    is written; a remote one (object store, Hub) is read once, its rows checked as they stream.
    """
    resolved = resolve(source)
    if resolved.local:
        first = scan_examples(resolved, max_chars=max_chars, text_field=text_field).first
        return first, iter_examples(resolved, max_chars=max_chars, text_field=text_field, warn=False)
    stream = iter_examples(resolved, max_chars=max_chars, text_field=text_field)
    head = next(stream, None)
    if head is None:
        raise InputError("no rows", source=resolved.name)

    def chained() -> Iterator[Example]:
        yield head
        yield from stream

    return head, chained()


def _name(source: Any, options: Mapping[str, Any]) -> str:
    if isinstance(source, Source):
        return source.name
    from critiq.data.sources import describe

    return str(options.get("name") or describe(source))


def _check_new(example: Example, first: Example | None, seen: dict[str, Loc], loc: Loc) -> None:
    """Refuse a repeated id, and a pointwise row among pairs (or the reverse)."""
    if example.id in seen:
        earlier = seen[example.id]
        where = earlier.describe() if earlier.source == loc.source else f"{earlier.source} {earlier.describe()}"
        raise loc.error(f"duplicate id {example.id!r} (first at {where})")
    seen[example.id] = loc
    if first is not None and type(example) is not type(first):
        kind = "pairwise" if isinstance(first, Pair) else "pointwise"
        raise loc.error(f"mixes pairwise and pointwise rows (the first row is {kind})")


def _warn_truncated(label: str, truncated: int, max_chars: int | None) -> None:
    if truncated:
        log.warning("%s: truncated %d texts to %d characters (`max_chars`)", label, truncated, max_chars)


def _truncate(text: Any, max_chars: int | None) -> tuple[Any, int]:
    if max_chars is not None and isinstance(text, str) and len(text) > max_chars:
        return text[:max_chars], 1
    return text, 0


def _is_nan(value: Any) -> bool:
    """How pandas fills missing cells."""
    return isinstance(value, float) and math.isnan(value)


def _missing(value: Any) -> bool:
    return value is None or value == "" or _is_nan(value)


def _parse_row(row: Mapping[str, Any], stem: str, loc: Loc, max_chars: int | None) -> tuple[Example, int]:
    row = {key: None if _is_nan(value) else value for key, value in row.items()}
    row_id = row.get("id")
    row_id = f"{stem}-{loc.number}" if _missing(row_id) else _id_text(row_id)
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
        raise loc.error(_reason(error)) from None
    raise loc.error(
        "unknown layout: expected {a, b, preferred}, {A, B, answer}, {chosen, rejected} or {text, label} "
        f"(fields: {', '.join(row) or 'none'})"
    )


def _id_text(value: Any) -> str:
    """Ids as text; a whole float (pandas turns an int column with gaps into floats) loses its ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_KNOWN = {"id", "a", "b", "preferred", "A", "B", "answer", "chosen", "rejected", "text", "label", "domain", "metadata"}


def _pair(
    row_id: str,
    a: Any,
    b: Any,
    preferred: Preference | None,
    domain: Any,
    metadata: dict[str, Any],
    max_chars: int | None,
) -> tuple[Pair, int]:
    a, cut_a = _truncate(a, max_chars)
    b, cut_b = _truncate(b, max_chars)
    pair = Pair(
        id=row_id,
        a=_require_text(a, "a"),
        b=_require_text(b, "b"),
        preferred=preferred,
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


def _preference(value: Any) -> Preference | None:
    if _missing(value):
        return None
    if isinstance(value, str) and value.strip() in _PREFERRED:
        return _PREFERRED[value.strip()]
    raise ValueError(f"preferred must be 'a' or 'b', got {value!r}")


def _point_label(value: Any) -> Literal[0, 1] | None:
    if _missing(value):
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy booleans too
        return 1 if value else 0
    if isinstance(value, float) and value in (0.0, 1.0):  # pandas: an int column with gaps becomes float
        return 1 if value else 0
    if str(value).strip() in ("0", "1"):
        return 1 if str(value).strip() == "1" else 0
    raise ValueError(f"label must be 0 or 1, got {value!r}")


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(error)
