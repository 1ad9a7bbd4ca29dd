"""One owner per output: an exclusive lock on a sibling lock file, held while a command writes its output.

``label``, ``annotate``, ``mine`` and shard publishing take it before they read or write their output; a second
process on the same output stops with one line naming the holder's pid, before writing anything. The lock is
``fcntl.flock`` on ``.NAME.lock`` beside the output, holding the holder's pid; the file is removed on release, and
the kernel drops the lock when its holder dies (a kill -9 leaves the file, which the next process takes over).
A one-time conversion shared by processes (the embedded model's files) waits for its lock instead: ``waiting_lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from critiq.errors import CritiqError


class OutputLocked(CritiqError):
    """Another process holds the output's lock."""


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file of ``output``: ``runs/labels.jsonl`` → ``runs/.labels.jsonl.lock``."""
    path = Path(output).absolute()
    return path.with_name(f".{path.name}.lock")


class OutputLock:
    """The held lock of one output; :meth:`release` (or leaving the ``with`` block) frees it."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self._fd: int | None = None
        self.output = Path(output)
        self.path = lock_path(output)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if holder == str(os.getpid()):
                    raise OutputLocked(
                        f"{self.output}: already open in this process (pid {holder}); close it first"
                    ) from None
                raise OutputLocked(
                    f"{self.output}: in use by another critiq process (pid {holder}); wait for it to finish, "
                    "or stop it, then run again"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file as we opened it: take the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and unlock (in that order: whoever opened the old file sees it is gone)."""
        if self._fd is not None:
            if _same_file(self._fd, self.path):
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting for another holder to finish (for a conversion done once)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
