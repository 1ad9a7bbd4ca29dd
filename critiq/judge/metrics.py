"""Agreement of criteria and votes with human labels: accuracy (an abstention counts as wrong), decided accuracy
(over A/B verdicts only), coverage, each accuracy with its Wilson interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from critiq.data.models import CriterionStats, Judgment
from critiq.stats import wilson_interval


def agreement(correct: int, judged: int, n: int) -> CriterionStats:
    """The one definition of accuracy: ``correct / n`` (abstentions and ties wrong), ``correct / judged`` as
    ``decided_accuracy``, ``judged / n`` as coverage, with a Wilson interval on each accuracy."""
    return CriterionStats(
        accuracy=correct / n if n else None,
        interval=wilson_interval(correct, n) if n else None,
        decided_accuracy=correct / judged if judged else None,
        decided_interval=wilson_interval(correct, judged) if judged else None,
        coverage=judged / n if n else 0.0,
        n=n,
        correct=correct,
        judged=judged,
    )


def criterion_stats(judgments: Sequence[Judgment], gold: Mapping[str, str | None]) -> CriterionStats:
    """A criterion's :func:`agreement` with the human labels; ``judged`` = its A/B verdicts (an abstention and a
    failed request count in ``n``, as wrong)."""
    labelled = [j for j in judgments if gold.get(j.example_id) is not None]
    judged = [j for j in labelled if j.decided]
    correct = sum(j.verdict == gold[j.example_id] for j in judged)
    return agreement(correct, len(judged), len(labelled))


def position_bias(raw_cells: Sequence[Sequence[Judgment]]) -> dict[str, float | int | None]:
    """How much verdicts depend on the order of the texts.

    ``flip_rate``: among cells judged in both orders with a verdict each time, the share whose verdict changed
    with the order (``swap="both"`` only). ``first_position_rate``: share of non-``none`` answers that picked
    whichever text was shown first (0.5 means no positional preference).
    """
    both = [cell for cell in raw_cells if len(cell) == 2 and all(j.decided for j in cell)]
    flips = sum(cell[0].verdict != cell[1].verdict for cell in both)
    answers = [j for cell in raw_cells for j in cell if j.decided]
    first = sum((j.verdict == "A") != j.swapped for j in answers)
    return {
        "flip_rate": flips / len(both) if both else None,
        "cells_in_both_orders": len(both),
        "first_position_rate": first / len(answers) if answers else None,
        "answers": len(answers),
    }
