"""The labels on disk: ``--out`` holds exactly the current labels, ``<out>.skipped.jsonl`` the skipped pairs.

Each answer is appended and fsync'd before the caller goes on; an undo rewrites its file atomically. Both files are
critiq pair files (``{"id", "a", "b", "preferred", "domain", "source", "metadata"}``), so ``critiq mine`` reads
``--out`` as it is. Opening takes the output's lock (:mod:`critiq.lock`: a second process on the same ``--out``
stops with one line naming the holder's pid), checks existing files and writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from critiq.data.models import Pair
from critiq.errors import InputError
from critiq.io import JsonlAppender, sync_directory, write_jsonl
from critiq.lock import OutputLock

log = logging.getLogger(__name__)

SKIPPED_SUFFIX = ".skipped.jsonl"


def skipped_path(out: Path) -> Path:
    """Where the skipped pairs of ``out`` go: ``pairs.jsonl`` → ``pairs.skipped.jsonl``."""
    return out.with_name(out.stem + SKIPPED_SUFFIX)


class LabelStore:
    """Rows of answered pairs, in answer order, mirrored in two JSONL files."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        if self.out.suffix.lower() != ".jsonl":
            raise InputError("must be a .jsonl file", source=f"out={self.out}")
        self.skipped_out = skipped_path(self.out)
        self.lock = OutputLock(self.out)  # held until close(): one process owns --out and its skipped file
        try:
            self._read()
        except BaseException:
            self.lock.release()
            raise

    def _read(self) -> None:
        self.labels = _read_rows(self.out, labelled=True)
        self.skipped = _read_rows(self.skipped_out, labelled=False)
        ids = [row["id"] for row in self.labels + self.skipped]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise InputError(f"pair {twice!r} is answered twice", source=str(self.out))

    def close(self) -> None:
        """Release the output's lock (the files stay as they are)."""
        self.lock.release()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pairs(self) -> list[Pair]:
        """The labels as pairs, for training a scorer."""
        return [Pair(id=r["id"], a=r["a"], b=r["b"], preferred=r["preferred"]) for r in self.labels]

    def holds(self, pair_id: str) -> bool:
        return any(row["id"] == pair_id for row in self.labels + self.skipped)

    def add(self, row: dict[str, Any]) -> None:
        """Append ``row`` to its file (``preferred`` None = skipped) and fsync it before returning."""
        skipped = row.get("preferred") is None
        path = self.skipped_out if skipped else self.out
        created = not path.exists()
        with JsonlAppender(path, flush_every=1) as appender:
            appender.write(row)
        if created:
            sync_directory(path.parent)
        (self.skipped if skipped else self.labels).append(row)

    def remove(self, pair_id: str | None = None) -> dict[str, Any] | None:
        """Take back an answer (by default the last label) with an atomic rewrite; returns its row, or None."""
        if pair_id is None:
            if not self.labels:
                return None
            pair_id = self.labels[-1]["id"]
        for rows, path in ((self.labels, self.out), (self.skipped, self.skipped_out)):
            for index, row in enumerate(rows):
                if row["id"] == pair_id:
                    write_jsonl(path, rows[:index] + rows[index + 1 :])
                    del rows[index]
                    return row
        return None


def _read_rows(path: Path, *, labelled: bool) -> list[dict[str, Any]]:
    """The complete rows of an existing answers file; a torn last line (a kill mid-write) is left out."""
    if not path.exists():
        return []
    if not path.is_file():
        raise InputError("is not a file", source=str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not a pairs file (not UTF-8)", source=str(path)) from None
    lines = text.split("\n")
    if lines and lines[-1].strip():
        log.warning("%s: dropping a torn last line (an interrupted write)", path)
    rows = []
    for number, line in enumerate(lines[:-1], start=1):
        if line.strip():
            rows.append(_check_row(line, path, number, labelled))
    return rows


def _check_row(line: str, path: Path, number: int, labelled: bool) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"not a pairs file (malformed JSON: {error.msg})", source=str(path), line=number) from None
    if not isinstance(row, dict) or not {"id", "a", "b", "preferred"} <= set(row):
        raise InputError("not a pairs file (a row needs id, a, b and preferred)", source=str(path), line=number)
    try:
        pair = Pair.model_validate({k: row[k] for k in ("id", "a", "b", "preferred")})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InputError(f"not a pairs file ({where}: {first.get('msg')})", source=str(path), line=number) from None
    if labelled and pair.preferred is None:
        raise InputError("not a pairs file (a label without preferred)", source=str(path), line=number)
    return row
