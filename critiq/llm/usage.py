"""Request accounting and budget caps."""

from __future__ import annotations

from pydantic import BaseModel

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
    """Stop cleanly once this many requests were sent or this much money was spent."""

    max_requests: int | None = None
    max_cost: float | None = None

    def check(self, usage: Usage) -> None:
        if self.max_requests is not None and usage.requests >= self.max_requests:
            raise BudgetExceeded(f"request budget of {self.max_requests} reached; rerun with --resume to continue")
        if self.max_cost is not None and usage.cost >= self.max_cost:
            raise BudgetExceeded(f"cost budget of ${self.max_cost:.2f} reached; rerun with --resume to continue")
