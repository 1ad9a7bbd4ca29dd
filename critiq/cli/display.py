"""What the CLI shows: the stderr console, the progress display, percentages and the criteria table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from critiq.data.models import Criterion, CriterionStats
from critiq.stats import pct

console = Console(stderr=True)


def criteria_table(criteria: Sequence[Criterion], stats: Mapping[str, CriterionStats] | None = None) -> None:
    """Print criteria with their accuracy (from ``stats`` when given, else their own)."""
    table = Table("criterion", "accuracy", "decided", "coverage", "n", "description", title="criteria")
    for c in criteria:
        s = (stats or {}).get(c.name) or c.stats
        table.add_row(
            c.name,
            pct(s.accuracy if s else None),
            pct(s.decided_accuracy if s else None),
            pct(s.coverage if s else None),
            str(s.n if s else ""),
            c.description[:90],
        )
    console.print(table)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display; yields ``update(stage, done, total)``."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=max(total, 1))
        progress.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

    with progress:
        yield update
