"""Crash-safe file writes: atomic replace for documents and folders, append + fsync for record streams.

Replaced files get the mode the user's umask gives (not ``mkstemp``'s 0600), and the directory is fsync'd after each
rename, so the new name survives a power cut too.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees either the old or the new file, never a torn one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write bytes (temp file, fsync, rename): a reader never sees a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """fsync a directory, so that a rename or a new file in it is durable (a no-op where that is unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def staging_dir(target: str | os.PathLike[str]) -> Path:
    """A new empty folder beside ``target`` to build its replacement in (see :func:`replace_dir`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new"))
    staged.chmod(0o777 & ~current_umask())  # the mode a plain mkdir gives, not mkdtemp's 0700
    return staged


def replace_dir(staged: Path, target: Path) -> None:
    """Put the folder ``staged`` at ``target``: a reader, or a kill at any moment, sees the old folder or the new.

    An existing ``target`` is swapped atomically with ``renameat2(RENAME_EXCHANGE)`` (Linux) and then removed;
    elsewhere it is renamed aside first, so a kill in between leaves the old folder as ``.NAME.*.old``.
    """
    if not target.exists():
        os.rename(staged, target)
    elif _exchange(staged, target):
        shutil.rmtree(staged)  # now the old folder
    else:
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.rename(target, old / target.name)
        os.rename(staged, target)
        shutil.rmtree(old)
    sync_directory(target.parent)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
            return False
        raise OSError(errno, os.strerror(errno), os.fspath(second))
    return True


class JsonlAppender:
    """Append JSON records to a file, fsync'd every ``flush_every`` records and on close.

    A kill can lose at most the unsynced tail; a torn last line is dropped by ``read_jsonl_ids``.
    """

    def __init__(self, path: str | os.PathLike[str], flush_every: int = 16) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._handle = self.path.open("a", encoding="utf-8")
        self._pending = 0
        self.flush_every = flush_every

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._pending += 1
        if self._pending >= self.flush_every:
            self.sync()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._pending = 0

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    """Drop a partial last line left by a kill mid-write."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        handle.truncate(cut)


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield complete JSON records of a file written by ``JsonlAppender``; a torn last line is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return
            line = line.strip()
            if line:
                yield json.loads(line)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Atomically write a whole JSONL file; returns the record count."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
