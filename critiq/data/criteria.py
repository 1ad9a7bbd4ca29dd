"""Read and write lists of criteria (``criteria.json`` from a run, or a user's own file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from critiq.data.models import Criterion
from critiq.errors import InputError


def load_criteria(path: str | Path) -> list[Criterion]:
    """Criteria from JSON (a list, or ``{"criteria": [...]}`` as a run writes), JSONL or YAML.

    Duplicate names and empty descriptions are refused with the file and the criterion's position.
    """
    path = Path(path)
    label = str(path)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", source=label)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not valid UTF-8", source=label) from None
    rows = _rows(text, path.suffix.lower(), label)
    criteria: list[Criterion] = []
    seen: set[str] = set()
    for index, row in rows:
        if not isinstance(row, dict):
            raise InputError("each criterion must be an object with name and description", source=label, line=index)
        try:
            criterion = Criterion.model_validate({k: v for k, v in row.items() if k in Criterion.model_fields})
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError(f"criterion {field}: {first['msg']}", source=label, line=index) from None
        if criterion.name in seen:
            raise InputError(f"duplicate criterion name {criterion.name!r}", source=label, line=index)
        seen.add(criterion.name)
        criteria.append(criterion)
    if not criteria:
        raise InputError("no criteria", source=label)
    return criteria


def _rows(text: str, suffix: str, label: str) -> list[tuple[int, Any]]:
    if not text.strip():
        raise InputError("file is empty", source=label)
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise InputError(f"malformed JSON ({error.msg})", source=label, line=number) from None
        return rows
    try:
        data = yaml.safe_load(text) if suffix in (".yaml", ".yml") else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        line = getattr(error, "lineno", None) or getattr(getattr(error, "problem_mark", None), "line", -1) + 1
        raise InputError(f"malformed {suffix.lstrip('.').upper() or 'JSON'}", source=label, line=line or None) from None
    if isinstance(data, dict):
        data = data.get("criteria")
    if not isinstance(data, list):
        raise InputError('expected a list of criteria or {"criteria": [...]}', source=label)
    # JSON/YAML lists carry no per-item line here; report the 1-based position as "item N".
    return [(index, row) for index, row in enumerate(data, start=1)]


def save_criteria(path: str | Path, criteria: list[Criterion]) -> None:
    from critiq.io import atomic_write_json

    atomic_write_json(path, {"criteria": [c.model_dump(mode="json") for c in criteria]})
