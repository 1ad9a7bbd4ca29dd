"""Output rows of `annotate`, and running agreement with the human labels (constant memory)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from critiq.data.models import Criterion, CriterionStats, Example, Pair
from critiq.judge.metrics import agreement
from critiq.judge.vote import majority


def record_for(example: Example, verdicts: Mapping[str, str | None], margin: int) -> dict[str, Any]:
    """The output row: the vote's label, its margin (A votes − B votes) and each criterion's verdict.

    A verdict ``None`` (``null`` in the file) marks a criterion the early stop did not ask; ``asked`` counts the
    others. The row keeps the ``{id, a, b, preferred}`` layout that `critiq train-scorer` and ``load_pairs`` read.
    """
    given = [v for v in verdicts.values() if v is not None]
    label = majority(given, margin)
    human = example.gold
    row: dict[str, Any] = {"id": example.id}
    if isinstance(example, Pair):
        row |= {"a": example.a, "b": example.b, "preferred": label.lower() if label else None}
    else:
        row |= {"text": example.text, "label": None if label is None else int(label == "A")}
    a_votes = sum(v == "A" for v in given)
    b_votes = sum(v == "B" for v in given)
    row |= {"margin": a_votes - b_votes, "votes": dict(verdicts), "asked": len(given), "domain": example.domain}
    if human is not None:
        row["human"] = human.lower() if isinstance(example, Pair) else int(human == "A")
    if example.metadata:
        row["metadata"] = example.metadata
    return row


def _stats(correct: int, judged: int, n: int) -> CriterionStats:
    return agreement(correct, judged, n)


class Agreement:
    """Counts, per criterion and for the vote, how often verdicts match the human label (``accuracy`` counts an
    abstention or a tie as wrong; ``decided_accuracy`` is over A/B verdicts, as the paper's per-criterion accuracy).
    A criterion the early stop did not ask is left out of its counts."""

    def __init__(self, criteria: Sequence[Criterion], margin: int) -> None:
        self.margin = margin
        self.counts = {c.name: [0, 0, 0] for c in criteria}  # correct, judged, n
        self.vote = [0, 0, 0]

    def add(self, gold: str, verdicts: Mapping[str, str | None]) -> None:
        for name, verdict in verdicts.items():
            if verdict is None:
                continue
            counts = self.counts[name]
            counts[2] += 1
            if verdict != "none":
                counts[1] += 1
                counts[0] += verdict == gold
        label = majority([v for v in verdicts.values() if v is not None], self.margin)
        self.vote[2] += 1
        if label is not None:
            self.vote[1] += 1
            self.vote[0] += label == gold

    @property
    def n(self) -> int:
        return self.vote[2]

    def criteria(self) -> dict[str, CriterionStats]:
        return {name: _stats(*counts) for name, counts in self.counts.items()}

    def vote_stats(self) -> CriterionStats:
        return _stats(*self.vote)
