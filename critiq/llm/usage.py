"""Request accounting and budget caps that are never overshot: a request is reserved before it is sent."""

from __future__ import annotations

import threading

from pydantic import BaseModel, PrivateAttr

from critiq.errors import BudgetExceeded


class Usage(BaseModel):
    """What a run has spent. ``requests`` counts HTTP attempts, retries and re-asks included."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    reasks: int = 0
    failures: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, other: Usage) -> Usage:
        """Field-wise sum (used when a resumed run adds to what earlier attempts spent)."""
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields})


class Budget(BaseModel):
    """Stop cleanly before this many requests are exceeded or this much money could be spent.

    :meth:`reserve` is called before each request is sent: it counts the request and holds its worst-case cost
    (prompt tokens counted, ``max_tokens`` completion tokens); :meth:`settle` replaces the hold by the real cost once
    the answer (or a failure, which costs nothing) is in. Concurrent requests therefore cannot overrun either cap.
    """

    max_requests: int | None = None
    max_cost: float | None = None
    _held: float = PrivateAttr(default=0.0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def held(self) -> float:
        """Worst-case cost of the requests in flight."""
        return self._held

    def check(self, usage: Usage) -> None:
        """Raise :class:`BudgetExceeded` when not even one more request fits."""
        self._refuse(usage, 0.0)

    def reserve(self, usage: Usage, worst_cost: float = 0.0) -> float:
        """Count one request about to be sent and hold ``worst_cost``; returns the hold to :meth:`settle`."""
        with self._lock:
            self._refuse(usage, worst_cost)
            usage.requests += 1
            self._held += worst_cost
        return worst_cost

    def settle(self, usage: Usage, held: float, cost: float) -> None:
        """Release a hold and add what the request really cost."""
        with self._lock:
            self._held = max(0.0, self._held - held)
            usage.cost += cost

    def _refuse(self, usage: Usage, worst_cost: float) -> None:
        if self.max_requests is not None and usage.requests >= self.max_requests:
            raise BudgetExceeded(f"request budget of {self.max_requests} reached; rerun with resume=True to continue")
        if self.max_cost is not None and usage.cost + self._held + worst_cost > self.max_cost:
            raise BudgetExceeded(
                f"cost budget of ${self.max_cost:.2f} reached (${usage.cost:.4f} spent, ${self._held:.4f} held by "
                "requests in flight); rerun with resume=True to continue"
            )
