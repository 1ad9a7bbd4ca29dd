"""Criterion lines: every version a line (``slot``) of criteria went through, and how each final criterion got there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from critiq.rundir.flow import FinalCriterion, FlowCriteria, HistoryRow, RunState
from critiq.rundir.reader import RunFiles

REPLACED = "new (replaced the previous)"
REWRITTEN = "rewritten"


@dataclass(frozen=True)
class Version:
    """A line at one iteration: accuracy, status, what changed since the previous one, its name if not the final."""

    iteration: int
    accuracy: float | None
    status: str
    critiqued: str
    change: str
    other_name: str | None
    final: bool


@dataclass(frozen=True)
class CriterionLine:
    criterion: FinalCriterion
    versions: list[Version]


def history_rows(run: RunFiles, state: RunState | None, criteria: FlowCriteria | None) -> list[HistoryRow]:
    """Every criterion version per iteration: ``state.json``'s history, else what the other files keep of it."""
    rows = list(state.history) if state else []
    if not rows:
        rows = run.iteration_rows()
    if not rows and criteria:
        rows = [row for criterion in criteria.criteria for row in criterion.history]
    return sorted(rows, key=lambda row: (row.slot, row.iteration))


def critiqued(row: HistoryRow) -> str:
    """``critiqued k of m wrong cases`` for a mid criterion the manager reflected on, else empty."""
    return f"critiqued {row.critiqued} of {row.wrong} wrong cases" if row.wrong is not None else ""


def versions(rows: Sequence[HistoryRow], final: FinalCriterion) -> list[Version]:
    """One per iteration: accuracy and status, what changed, other names shown, the final version marked."""
    out: list[Version] = []
    previous: HistoryRow | None = None
    for row in sorted(rows, key=lambda r: r.iteration):
        change = ""
        if previous is not None and row.name != previous.name:
            change = REPLACED
        elif previous is not None and row.description != previous.description:
            change = REWRITTEN
        is_final = row.name == final.name and row.description == final.description
        other_name = row.name if row.name != final.name else None
        out.append(
            Version(row.iteration, row.decided_accuracy, row.status, critiqued(row), change, other_name, is_final)
        )
        previous = row
    return out


def criterion_lines(criteria: FlowCriteria | None, history: Sequence[HistoryRow]) -> list[CriterionLine]:
    """Each final criterion (else each best one below the threshold) with its line's versions (its own
    ``history``, else the line it holds in ``history``)."""
    if criteria is None:
        return []
    by_slot: dict[int, list[HistoryRow]] = {}
    for row in history:
        by_slot.setdefault(row.slot, []).append(row)
    slot_of = {(row.name, row.description): row.slot for row in history}
    lines = []
    for criterion in criteria.voters:
        slot = slot_of.get((criterion.name, criterion.description))
        rows = criterion.history or (by_slot.get(slot, []) if slot is not None else [])
        lines.append(CriterionLine(criterion, versions(rows, criterion)))
    return lines
