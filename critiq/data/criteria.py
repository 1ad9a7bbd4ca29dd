"""Read and write lists of criteria (``criteria.json`` from a run, or a user's own file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from critiq.data.loaders import Loc, json_item_lines
from critiq.data.models import Criterion
from critiq.errors import InputError


def load_criteria(path: str | Path) -> list[Criterion]:
    """Criteria from JSON (a list, or ``{"criteria": [...]}`` as a run writes), JSONL or YAML.

    Duplicate names and empty descriptions are refused with the file and the criterion's line (or, where the line is
    not known, its position as ``item N``).
    """
    path = Path(path)
    label = str(path)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", source=label)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not valid UTF-8", source=label) from None
    criteria: list[Criterion] = []
    seen: dict[str, Loc] = {}
    for loc, row in _rows(text, path.suffix.lower(), label):
        if not isinstance(row, dict):
            raise loc.error("each criterion must be an object with name and description", label)
        try:
            criterion = Criterion.model_validate({k: v for k, v in row.items() if k in Criterion.model_fields})
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise loc.error(f"criterion {field}: {first['msg']}", label) from None
        if criterion.name in seen:
            raise loc.error(
                f"duplicate criterion name {criterion.name!r} (first at {seen[criterion.name].describe()})", label
            )
        seen[criterion.name] = loc
        criteria.append(criterion)
    if not criteria:
        raise InputError("no criteria", source=label)
    return criteria


def _rows(text: str, suffix: str, label: str) -> list[tuple[Loc, Any]]:
    if not text.strip():
        raise InputError("file is empty", source=label)
    if suffix == ".jsonl":
        rows: list[tuple[Loc, Any]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((Loc(len(rows) + 1, number, "line"), json.loads(line)))
                except json.JSONDecodeError as error:
                    raise InputError(f"malformed JSON ({error.msg})", source=label, line=number) from None
        return rows
    yaml_file = suffix in (".yaml", ".yml")
    try:
        data = yaml.safe_load(text) if yaml_file else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        where: int = getattr(error, "lineno", None) or (mark.line + 1 if mark is not None else 0)
        kind = suffix.lstrip(".").upper() or "JSON"
        raise InputError(f"malformed {kind}", source=label, line=where or None) from None
    lines = (_yaml_item_lines(text) if yaml_file else json_item_lines(text)) if isinstance(data, list) else None
    if isinstance(data, dict):
        data = data.get("criteria")
        lines = _yaml_item_lines(text, "criteria") if yaml_file else None
    if not isinstance(data, list):
        raise InputError('expected a list of criteria or {"criteria": [...]}', source=label)
    if lines is not None and len(lines) != len(data):
        lines = None
    return [(Loc(index, lines[index - 1] if lines else None, "item"), row) for index, row in enumerate(data, start=1)]


def _yaml_item_lines(text: str, key: str | None = None) -> list[int] | None:
    """Start line of each item of the top-level YAML list (or of the list under ``key``)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if key is not None and isinstance(node, yaml.MappingNode):
        node = next((value for name, value in node.value if getattr(name, "value", None) == key), None)
    if not isinstance(node, yaml.SequenceNode):
        return None
    return [item.start_mark.line + 1 for item in node.value]


def save_criteria(path: str | Path, criteria: list[Criterion]) -> None:
    from critiq.io import atomic_write_json

    atomic_write_json(path, {"criteria": [c.model_dump(mode="json") for c in criteria]})
