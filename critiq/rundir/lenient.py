"""Lenient validation: a value of the wrong shape in a hand-edited file is dropped and noted, not fatal.

Fields typed ``Maybe[X]``, ``Items[X]`` or ``Entries[X]`` validate strictly by default. Validated with
:func:`validate_leniently` (or ``context={"ignored": notes}``), a malformed optional part becomes None, and a malformed
item of a list or entry of a mapping is left out; each drop is noted in ``notes``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ValidationError, ValidationInfo
from pydantic import ValidatorFunctionWrapHandler as Handler
from pydantic import WrapValidator as Wrap

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def _notes(info: ValidationInfo) -> list[str] | None:
    """Where dropped values are noted when reading leniently (``context={"ignored": [...]}``); None when strict."""
    notes = info.context.get("ignored") if isinstance(info.context, dict) else None
    return notes if isinstance(notes, list) else None


def _drop(info: ValidationInfo, what: str, error: ValidationError) -> None:
    """Note a dropped value, or raise ``error`` when validating strictly."""
    notes = _notes(info)
    if notes is None:
        raise error
    first = error.errors()[0]
    inside = ".".join(str(part) for part in first["loc"])
    notes.append(f"{info.field_name}{what}: {inside + ': ' if inside else ''}{first['msg']}")


def _or_none(value: Any, handler: Handler, info: ValidationInfo) -> Any:
    if value == {}:
        return None
    try:
        return handler(value)
    except ValidationError as error:
        _drop(info, "", error)
        return None


def _each(
    value: Any,
    handler: Handler,
    info: ValidationInfo,
    kind: type[list[Any]] | type[dict[str, Any]],
) -> Any:
    """Validate a list or mapping whole; when that fails (reading leniently), item by item, keeping the valid ones."""
    notes = _notes(info)
    before = len(notes) if notes is not None else 0
    try:
        return handler(value)
    except ValidationError as error:
        if notes is None:
            raise
        del notes[before:]  # the item-by-item pass below notes them again
        if not isinstance(value, kind):
            _drop(info, "", error)
            return handler(kind())
    if isinstance(value, list):
        kept: list[Any] = []
        for index, item in enumerate(value):
            kept += _valid(handler, info, f"[{index}]", [item])
        return kept
    entries: dict[Any, Any] = {}
    for key, item in value.items():
        entries |= _valid(handler, info, f"[{key!r}]", {key: item})
    return entries


def _valid(handler: Handler, info: ValidationInfo, where: str, part: Any) -> Any:
    """``part`` validated, or emptied (and noted) when invalid."""
    try:
        return handler(part)
    except ValidationError as error:
        _drop(info, where, error)
        return type(part)()


def _items(value: Any, handler: Handler, info: ValidationInfo) -> Any:
    return _each(value, handler, info, list)


def _entries(value: Any, handler: Handler, info: ValidationInfo) -> Any:
    return _each(value, handler, info, dict)


Maybe = Annotated[T | None, Wrap(_or_none)]
"""An optional part; ``{}`` means absent, and a malformed one is dropped when reading leniently."""
Items = Annotated[list[T], Wrap(_items)]
"""A list whose malformed items are dropped when reading leniently."""
Entries = Annotated[dict[str, T], Wrap(_entries)]
"""A mapping whose malformed entries are dropped when reading leniently."""


def validate_leniently(model: type[M], data: Any) -> tuple[M, list[str]]:
    """``data`` as ``model`` with malformed optional parts dropped, and the notes saying what was dropped.

    Raises ``ValidationError`` when what remains is still invalid (a required field missing or malformed).
    """
    notes: list[str] = []
    return model.model_validate(data, context={"ignored": notes}), notes
