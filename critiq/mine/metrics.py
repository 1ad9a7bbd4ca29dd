"""Agreement of criteria with human labels: accuracy on non-``none`` verdicts, coverage, Wilson interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from critiq.data.models import CriterionStats, Judgment
from critiq.stats import wilson_interval


def criterion_stats(judgments: Sequence[Judgment], gold: Mapping[str, str | None]) -> CriterionStats:
    """Accuracy = correct / judged (non-``none``), as in the paper; coverage = judged / n."""
    labelled = [j for j in judgments if gold.get(j.example_id) is not None]
    judged = [j for j in labelled if j.verdict != "none"]
    correct = sum(j.verdict == gold[j.example_id] for j in judged)
    n = len(labelled)
    return CriterionStats(
        accuracy=correct / len(judged) if judged else None,
        coverage=len(judged) / n if n else 0.0,
        n=n,
        correct=correct,
        judged=len(judged),
        interval=wilson_interval(correct, len(judged)) if judged else None,
    )


def position_bias(raw_cells: Sequence[Sequence[Judgment]]) -> dict[str, float | int | None]:
    """How much verdicts depend on the order of the texts.

    ``flip_rate``: among cells judged in both orders with a verdict each time, the share whose verdict changed
    with the order (``swap="both"`` only). ``first_position_rate``: share of non-``none`` answers that picked
    whichever text was shown first (0.5 means no positional preference).
    """
    both = [cell for cell in raw_cells if len(cell) == 2 and all(j.verdict != "none" for j in cell)]
    flips = sum(cell[0].verdict != cell[1].verdict for cell in both)
    answers = [j for cell in raw_cells for j in cell if j.verdict != "none"]
    first = sum((j.verdict == "A") != j.swapped for j in answers)
    return {
        "flip_rate": flips / len(both) if both else None,
        "cells_in_both_orders": len(both),
        "first_position_rate": first / len(answers) if answers else None,
        "answers": len(answers),
    }
