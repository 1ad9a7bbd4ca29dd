"""Exact early stopping of a majority vote: ask criteria until the label can no longer change.

The label of a vote is ``A`` when ``A − B > margin``, ``B`` when ``B − A > margin``, otherwise none (a tie). With
``r`` criteria left and a current difference ``d = A − B``, the final difference can be any value in
``[d − r, d + r]`` (a ``none`` verdict leaves it unchanged), so the label is fixed once that whole interval lies on
one side. ``wave`` is the smallest number of further verdicts after which the label *could* be fixed: asking that
many at once (concurrently) asks exactly what one-at-a-time asking would, so the requests and the label are the
same as the sequential early stop, and the label is the full vote's by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

from critiq.data.models import Criterion

_STEP = {"A": 1, "B": -1}


def settled(diff: int, remaining: int, margin: int) -> bool:
    """Whether every way the ``remaining`` verdicts can fall gives the same label."""
    low, high = diff - remaining, diff + remaining
    return low > margin or high < -margin or (low >= -margin and high <= margin)


def wave(diff: int, remaining: int, margin: int) -> int:
    """How many more verdicts to ask before the label could be settled (0 when it already is)."""
    for asked in range(remaining + 1):
        left = remaining - asked
        # after ``asked`` verdicts the difference is anywhere in [diff − asked, diff + asked]
        reachable = range(diff - asked, diff + asked + 1)
        if any(settled(d, left, margin) for d in reachable):
            return asked
    return remaining  # pragma: no cover - asked == remaining always settles


def difference(verdicts: Sequence[str]) -> int:
    """A votes − B votes."""
    return sum(_STEP.get(v, 0) for v in verdicts)


def stopped_vote(row: Sequence[str], margin: int) -> int:
    """How many verdicts of ``row`` (in asking order) the early stop reads; pure, for simulation and tests."""
    asked = 0
    while (size := wave(difference(row[:asked]), len(row) - asked, margin)) > 0:
        asked += size
    return asked


def asking_order(criteria: Sequence[Criterion]) -> list[int]:
    """Indices of ``criteria``, most accurate first (measured accuracy from their stats; unknown accuracy last)."""

    def key(index: int) -> tuple[int, float, int]:
        stats = criteria[index].stats
        accuracy = stats.decided_accuracy if stats is not None else None
        return (accuracy is None, -(accuracy or 0.0), index)

    return sorted(range(len(criteria)), key=key)


def sequential_asked(row: Sequence[str], margin: int) -> int:
    """Verdicts read when asking one at a time and stopping at the first settled label (the reference)."""
    for asked in range(len(row) + 1):
        if settled(difference(row[:asked]), len(row) - asked, margin):
            return asked
    return len(row)  # pragma: no cover - the full row is always settled


def expected_asked(accuracies: Sequence[float], coverages: Sequence[float], margin: int) -> float:
    """Expected criteria asked per pair when criterion ``i`` (in asking order) gives a verdict with probability
    ``coverages[i]`` and the right one with probability ``accuracies[i]``, independently.

    Exact, by dynamic programming over the vote difference (by symmetry the true side is taken to be A). Waves ask
    what one-at-a-time asking asks, so the sequential stopping time is the one to count.
    """
    states: dict[int, float] = {0: 1.0}  # vote difference → probability, among pairs not yet settled
    total = len(accuracies)
    expected = 0.0
    for index in range(total):
        states = {d: p for d, p in states.items() if not settled(d, total - index, margin)}
        expected += sum(states.values())
        p_verdict, p_right = coverages[index], accuracies[index]
        moved: dict[int, float] = {}
        for diff, probability in states.items():
            for step, weight in ((1, p_verdict * p_right), (-1, p_verdict * (1 - p_right)), (0, 1 - p_verdict)):
                if weight:
                    moved[diff + step] = moved.get(diff + step, 0.0) + probability * weight
        states = moved
    return expected
