"""Read knowledge-base files (YAML lists or JSONL) into entries, reporting bad input as file:line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from critiq.errors import InputError
from critiq.knowledge.entry import KBEntry, describe_error

YAML_SUFFIXES = (".yaml", ".yml")
SUFFIXES = (*YAML_SUFFIXES, ".jsonl")
_SUFFIX_TEXT = ".yaml, .yml or .jsonl"


def kb_files(path: Path) -> list[Path]:
    """The knowledge-base files at ``path``: the file itself, or a folder's YAML/JSONL files sorted by name."""
    if not path.exists():
        raise InputError("no such file or folder", source=str(path))
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise InputError(f"unsupported file type '{path.suffix}' (expected {_SUFFIX_TEXT})", source=str(path))
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise InputError("folder holds no .yaml, .yml or .jsonl files", source=str(path))
    return files


def read_entries(path: Path) -> Iterator[tuple[KBEntry, int]]:
    """Yield each entry of one file with its 1-based line; the first bad entry raises ``InputError``."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", source=source) from exc
    records = _yaml_records(text, source) if path.suffix.lower() in YAML_SUFFIXES else _jsonl_records(text, source)
    for raw, line in records:
        yield parse_entry(raw, source=source, line=line), line


def parse_entry(raw: Any, *, source: str | None = None, line: int | None = None) -> KBEntry:
    """Validate one raw mapping into a ``KBEntry``; the error names the criterion and the bad fields."""
    if not isinstance(raw, dict):
        raise InputError(f"each criterion must be a mapping, got {_type_name(raw)}", source=source, line=line)
    try:
        return KBEntry.model_validate(raw)
    except ValidationError as exc:
        name = raw.get("name")
        prefix = f"criterion '{name}': " if isinstance(name, str) and name.strip() else ""
        raise InputError(prefix + describe_error(exc), source=source, line=line) from None


def _yaml_records(text: str, source: str) -> list[tuple[Any, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "single value"
            line = node.start_mark.line + 1
            raise InputError(f"expected a list of criteria at the top level, got a {kind}", source=source, line=line)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"invalid YAML: {problem}", source=source, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return [(item, child.start_mark.line + 1) for item, child in zip(data, node.value, strict=True)]


def _jsonl_records(text: str, source: str) -> list[tuple[Any, int]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((json.loads(line), number))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", source=source, line=number) from None
    return records


def _type_name(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty item"
    return f"a {type(value).__name__}"
