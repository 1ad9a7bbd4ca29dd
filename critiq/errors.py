"""The one exception type users see: a message that fits on one line."""

from __future__ import annotations


class CritiqError(Exception):
    """A user-facing error: bad input, bad option, unreachable server.

    The CLI prints ``str(error)`` as a single line and exits non-zero; no traceback
    unless ``--debug``.
    """


class InputError(CritiqError):
    """A file or value the user gave is malformed. The message names file:line or the option."""

    def __init__(self, reason: str, *, source: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        where = source or ""
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}" if where else reason)


class BudgetExceeded(CritiqError):
    """The request or cost budget is spent; finished work is saved and a rerun resumes."""


class OutputExists(CritiqError):
    """An output that already exists and would be replaced: ``force=True`` (``--force``) allows it."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__(f"{target}: already exists; pass force=True to replace it (or choose another output)")
