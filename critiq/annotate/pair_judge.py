"""The unit of annotation: judge one pair (or point) and return its verdicts.

``PairJudge`` is what the pipeline calls, once per example. ``PerCriterionJudge`` asks one request per criterion
(and order) and can stop early; another mode (one request answering every criterion) fits the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from critiq.annotate.early_stop import asking_order, difference, wave
from critiq.data.models import Criterion, Example
from critiq.judge.keys import criterion_key
from critiq.judge.worker import Worker


@dataclass
class PairOutcome:
    """What judging one example gave: each criterion's verdict by name (``None``: not asked), or an error."""

    verdicts: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def asked(self) -> int:
        return sum(v is not None for v in self.verdicts.values())


class PairJudge(Protocol):
    """Judges one example against the run's criteria."""

    async def __call__(self, example: Example) -> PairOutcome: ...


class PerCriterionJudge:
    """One request per criterion and order, through :class:`~critiq.judge.worker.Worker`.

    With ``early_stop``, criteria are asked most accurate first, in waves of the fewest verdicts that could settle
    the vote (:func:`~critiq.annotate.early_stop.wave`), until the majority with ``margin`` can no longer change;
    the criteria not asked have verdict ``None``. Without it every criterion is asked at once.
    """

    def __init__(self, worker: Worker, criteria: Sequence[Criterion], *, margin: int = 0, early_stop: bool = True):
        self.worker = worker
        self.criteria = list(criteria)
        self.margin = margin
        self.early_stop = early_stop
        self.order = asking_order(self.criteria) if early_stop else list(range(len(self.criteria)))

    async def __call__(self, example: Example) -> PairOutcome:
        verdicts: dict[str, str | None] = {c.name: None for c in self.criteria}
        asked: list[str] = []
        try:
            while len(asked) < len(self.order):
                remaining = len(self.order) - len(asked)
                size = wave(difference(asked), remaining, self.margin) if self.early_stop else remaining
                if size == 0:
                    break
                batch = [self.criteria[i] for i in self.order[len(asked) : len(asked) + size]]
                await self.worker.judge([example], batch)
                for criterion in batch:
                    judgment = self.worker.verdict(criterion, example)
                    if judgment is None or judgment.verdict is None:  # not judged, or its request failed
                        error = judgment.rationale if judgment is not None else ""
                        return PairOutcome(verdicts, error=error or "not judged")
                    verdicts[criterion.name] = judgment.verdict
                    asked.append(judgment.verdict)
            return PairOutcome(verdicts)
        finally:
            self._forget(example)

    def _forget(self, example: Example) -> None:
        """Drop the example's judgments from the worker's memo, so memory stays flat on a long corpus."""
        for criterion in self.criteria:
            key = criterion_key(criterion)
            for swapped in (False, True):
                self.worker.memo.pop((key, example.id, swapped), None)
