"""The knowledge base of published quality criteria that seeds criterion mining."""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from critiq.data.models import Criterion
from critiq.errors import CritiqError, InputError
from critiq.io import atomic_write_text, write_jsonl
from critiq.knowledge.entry import KINDS, KNOWN_DOMAINS, KBEntry, Source, describe_error
from critiq.knowledge.loader import YAML_SUFFIXES, kb_files, parse_entry, read_entries
from critiq.knowledge.text import BM25, jaccard, name_words, tokenize

__all__ = ["KINDS", "KNOWN_DOMAINS", "KBEntry", "KnowledgeBase", "Source", "append_entry", "bundled_path"]

log = logging.getLogger(__name__)

MIN_DESCRIPTION_WORDS = 8
MAX_DESCRIPTION_WORDS = 150


def bundled_path() -> Path:
    """The folder of bundled criteria: installed package data first, else the repository's ``knowledge_base/``."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "knowledge_base", here.parents[2] / "knowledge_base"):
        if candidate.is_dir():
            return candidate
    raise CritiqError("bundled knowledge base not found (expected critiq/knowledge_base or knowledge_base/)")


class KnowledgeBase:
    """Criteria by unique name, in load order, each remembering where it was defined."""

    def __init__(self, entries: Iterable[KBEntry] = ()) -> None:
        self._entries: dict[str, KBEntry] = {}
        self._origin: dict[str, str] = {}
        self._user: set[str] = set()
        for entry in entries:
            self.add(entry)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, bundled: bool = True) -> KnowledgeBase:
        """The bundled base, with the criteria at ``path`` (a file or folder) merged over it by name."""
        kb = cls()
        if bundled:
            kb._add_from(kb_files(bundled_path()))
        if path is not None:
            user = cls()
            user._add_from(kb_files(Path(path)))
            for name, entry in user._entries.items():
                if name in kb._entries:
                    log.debug("criterion %r from %s replaces %s", name, user._origin[name], kb._origin[name])
                kb._entries[name] = entry
                kb._origin[name] = user._origin[name]
                kb._user.add(name)
        return kb

    def _add_from(self, files: list[Path]) -> None:
        for file in files:
            for entry, line in read_entries(file):
                if entry.name in self._entries:
                    reason = f"duplicate criterion name '{entry.name}' (first defined at {self._origin[entry.name]})"
                    raise InputError(reason, source=str(file), line=line)
                self._entries[entry.name] = entry
                self._origin[entry.name] = f"{file}:{line}"

    def add(self, entry: KBEntry | Mapping[str, Any], *, origin: str = "added") -> KBEntry:
        """Add one criterion; a name already present is refused."""
        if not isinstance(entry, KBEntry):
            try:
                entry = KBEntry.model_validate(dict(entry))
            except ValidationError as exc:
                raise CritiqError(f"invalid criterion: {describe_error(exc)}") from None
        if entry.name in self._entries:
            raise CritiqError(f"criterion '{entry.name}' already exists (defined at {self._origin[entry.name]})")
        self._entries[entry.name] = entry
        self._origin[entry.name] = origin
        return entry

    def get(self, name: str) -> KBEntry | None:
        """The criterion called ``name``, or None."""
        return self._entries.get(name)

    def is_user(self, name: str) -> bool:
        """Whether ``name`` comes from the user's own knowledge base (``load(path)``) rather than the bundled one."""
        return name in self._user

    def origin(self, name: str) -> str | None:
        """Where ``name`` was defined: ``file:line``, or ``added``."""
        return self._origin.get(name)

    def names(self) -> list[str]:
        return list(self._entries)

    def domains(self) -> Counter[str]:
        """How many criteria carry each domain tag."""
        return Counter(tag for entry in self for tag in entry.domains)

    def criteria(self, names: Iterable[str] | None = None) -> list[Criterion]:
        """The named entries (all when ``names`` is None) as ``Criterion`` objects."""
        chosen = self._entries.values() if names is None else [self._require(name) for name in names]
        return [entry.to_criterion() for entry in chosen]

    def _require(self, name: str) -> KBEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise CritiqError(f"no criterion named '{name}' in the knowledge base")
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[KBEntry]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def search(
        self,
        query: str | None = None,
        domains: Iterable[str] | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[KBEntry]:
        """Entries tagged with any of ``domains`` and usable as ``kind``, ranked by BM25 keyword match to ``query``.

        Without a query the filtered entries keep load order; with one, only entries sharing a keyword are returned.
        """
        if kind is not None and kind not in KINDS:
            raise CritiqError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        tags = {tag.strip().lower() for tag in domains or () if tag.strip()}
        pool = [entry for entry in self if (not tags or tags & set(entry.domains)) and _kind_ok(entry, kind)]
        terms = tokenize(query or "")
        if terms:
            scores = keyword_scores(pool, terms)
            ranked = sorted(zip(pool, scores, strict=True), key=lambda pair: -pair[1])
            pool = [entry for entry, score in ranked if score > 0]
        return pool if limit is None else pool[: max(limit, 0)]

    def validate(self, known_domains: Iterable[str] | None = None) -> list[str]:
        """Problems that loading does not catch: invalid fields, too short or long or repeated descriptions,
        and, when ``known_domains`` is given, domain tags outside it."""
        known = set(known_domains) if known_domains is not None else None
        seen: dict[str, str] = {}
        return [problem for entry in self for problem in self._problems(entry, seen, known)]

    def problems_of(self, name: str) -> list[str]:
        """What :meth:`validate` reports about the entry ``name`` (a repeated description counts against it)."""
        seen = {" ".join(e.description.lower().split()): e.name for e in self if e.name != name}
        return self._problems(self._require(name), seen, None)

    def _problems(self, entry: KBEntry, seen: dict[str, str], known: set[str] | None) -> list[str]:
        where = f"{self._origin[entry.name]}: criterion '{entry.name}'"
        try:
            KBEntry.model_validate(entry.model_dump())
        except ValidationError as exc:
            return [f"{where}: {describe_error(exc)}"]
        problems = []
        words = len(entry.description.split())
        if words < MIN_DESCRIPTION_WORDS:
            problems.append(f"{where}: description too short to judge by ({words} words)")
        if words > MAX_DESCRIPTION_WORDS:
            problems.append(f"{where}: description too long ({words} words, at most {MAX_DESCRIPTION_WORDS})")
        key = " ".join(entry.description.lower().split())
        if key in seen:
            problems.append(f"{where}: same description as '{seen[key]}'")
        seen.setdefault(key, entry.name)
        unknown = sorted(set(entry.domains) - known) if known is not None else []
        if unknown:
            problems.append(f"{where}: unknown domain tag(s) {', '.join(unknown)}")
        return problems

    def near_duplicates(self, threshold: float = 0.3) -> list[tuple[str, str, float]]:
        """Pairs of names whose word sets (split on '_') have Jaccard similarity above ``threshold``, most similar
        first; the CritiQ paper used this rule to deduplicate its knowledge base."""
        words = {name: name_words(name) for name in self._entries}
        pairs = []
        for a, b in itertools.combinations(self._entries, 2):
            score = jaccard(words[a], words[b])
            if score > threshold:
                pairs.append((a, b, round(score, 4)))
        return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every entry to one file atomically: JSONL for ``.jsonl``, otherwise a YAML list."""
        path = Path(path)
        records = [entry.record() for entry in self]
        if path.suffix.lower() == ".jsonl":
            write_jsonl(path, records)
        else:
            atomic_write_text(path, _dump_yaml(records))


def keyword_scores(entries: list[KBEntry], terms: list[str]) -> list[float]:
    """BM25 scores of ``entries`` (name counted twice, description, domain tags) against query ``terms``."""
    documents = [
        tokenize(f"{e.name.replace('_', ' ')} " * 2 + f"{e.description} {' '.join(e.domains)}") for e in entries
    ]
    return BM25(documents).scores(terms)


def append_entry(path: str | os.PathLike[str], entry: KBEntry) -> KnowledgeBase:
    """Append ``entry`` to the user file at ``path`` (created if absent), keeping its comments.

    The name must be new to the file and to the bundled base, and the entry must pass the checks of
    :meth:`KnowledgeBase.validate` (``critiq kb validate``); its first problem is raised otherwise, and the file is
    left as it was. Returns the merged base including the new entry.
    """
    path = Path(path)
    if path.suffix.lower() not in (*YAML_SUFFIXES, ".jsonl"):
        raise InputError(f"unsupported file type '{path.suffix}' (expected .yaml, .yml or .jsonl)", source=str(path))
    kb = KnowledgeBase.load(path if path.exists() else None)
    kb.add(entry, origin=str(path))
    problems = kb.problems_of(entry.name)
    if problems:
        raise CritiqError(f"not added: {problems[0]}")
    record = entry.record()
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    if path.suffix.lower() == ".jsonl":
        atomic_write_text(path, old + _json_line(record))
        return kb
    text = old + ("\n" if old.strip() else "") + _dump_yaml([record])
    try:
        [parse_entry(item) for item in yaml.safe_load(text)]
    except (yaml.YAMLError, TypeError, InputError):
        # The old file was not a plain block list (e.g. ``[]`` or flow style): rewrite it in full instead.
        mine = KnowledgeBase.load(path, bundled=False) if old.strip() else KnowledgeBase()
        mine.add(entry)
        text = _dump_yaml([item.record() for item in mine])
    atomic_write_text(path, text)
    return kb


def _kind_ok(entry: KBEntry, kind: str | None) -> bool:
    return kind is None or entry.kind == kind or (kind != "both" and entry.kind == "both")


def _dump_yaml(records: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(records, sort_keys=False, allow_unicode=True, width=118) if records else "[]\n"


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
