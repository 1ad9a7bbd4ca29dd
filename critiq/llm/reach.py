"""How long a run keeps trying a provider it cannot reach: consecutive connection failures across the whole run.

Every request retries a failed connection with backoff, but a provider that stays unreachable (no network, a wrong
host) must stop the run, not turn each request into a counted failure and the run into a downstream error. One
:class:`ConnectionBudget` is shared by the clients of a run: each connection failure extends the current streak,
any answer from the server ends it, and a streak longer than ``max_failures`` attempts or ``max_seconds`` seconds
stops every client with one :class:`~critiq.llm.errors.CannotReach` line.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from critiq.llm.errors import CannotReach, ProviderError, Unreachable


class ConnectionBudget:
    """Consecutive connection failures allowed across a run (by count and by time) before it stops."""

    def __init__(
        self, max_failures: int = 100, max_seconds: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max(1, max_failures)
        self.max_seconds = max_seconds
        self.clock = clock
        self.failures = 0
        self.since: float | None = None
        self.stopped: CannotReach | None = None

    def answered(self) -> None:
        """The server answered (a completion or an HTTP error): the streak of failures is over."""
        self.failures = 0
        self.since = None

    def judge(self, error: ProviderError, host: str) -> ProviderError:
        """``error`` itself, or the :class:`CannotReach` that stops the run once the streak is past its bounds."""
        if self.stopped is not None:
            return self.stopped
        if not isinstance(error, Unreachable):
            self.answered()
            return error
        now = self.clock()
        if self.since is None:
            self.since = now
        self.failures += 1
        seconds = now - self.since
        if self.failures >= self.max_failures or seconds >= self.max_seconds:
            self.stopped = CannotReach(
                f"cannot reach {host}: {error.provider_message or 'no connection'} "
                f"({self.failures} connection failures in a row over {seconds:.0f} s)",
                where=error.where,
            )
            return self.stopped
        return error
