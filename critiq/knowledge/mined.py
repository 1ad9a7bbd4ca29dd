"""Criteria mined in a run, as knowledge-base entries whose source is the run and what it measured."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from critiq.data.models import Criterion, CriterionKind
from critiq.errors import CritiqError
from critiq.knowledge.base import KnowledgeBase
from critiq.knowledge.entry import KBEntry, Measurement, Source

_TAG = re.compile(r"^[a-z][a-z0-9_-]*$")


def _snake(name: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", name.lower())).strip("_")


def _free_name(name: str, taken: KnowledgeBase, planned: set[str]) -> str:
    candidate, number = f"{name}_mined", 2
    while candidate in taken or candidate in planned:
        candidate, number = f"{name}_mined_{number}", number + 1
    return candidate


def entries_from_run(run_dir: str | Path, kb: KnowledgeBase) -> tuple[list[KBEntry], list[str]]:
    """The final criteria of a ``critiq mine`` run as entries to add to ``kb``, and a note on each one skipped or
    renamed (a name already in the knowledge base with the same description is skipped; with another description
    the mined one is added as ``NAME_mined``)."""
    from critiq.rundir import read_criteria

    doc = read_criteria(run_dir)
    if not doc.passed or not doc.criteria:
        raise CritiqError(
            f"{run_dir}: no criterion of that run reached its threshold ({doc.threshold}); nothing to add"
        )
    domains = [tag for tag in (d.strip().lower().replace(" ", "-") for d in doc.domains) if _TAG.match(tag)]
    kind: CriterionKind = "pointwise" if doc.data_kind == "points" else "pairwise"
    entries: list[KBEntry] = []
    notes: list[str] = []
    planned: set[str] = set()
    for criterion in doc.criteria:
        name = _snake(criterion.name) or "mined_criterion"
        existing = kb.get(name)
        if existing is not None and existing.description == " ".join(criterion.description.split()):
            notes.append(f"'{name}' is already in the knowledge base with this description: skipped")
            continue
        if existing is not None or name in planned:
            renamed = _free_name(name, kb, planned)
            notes.append(f"'{name}' is taken in the knowledge base: added the mined version as '{renamed}'")
            name = renamed
        planned.add(name)
        entries.append(
            KBEntry(
                name=name,
                description=criterion.description,
                domains=domains or ["general"],
                kind=kind,
                source=_source(criterion, doc.task, domains, doc.models, str(run_dir)),
            )
        )
    return entries, notes


def _source(criterion: Criterion, task: str, domains: list[str], models: dict[str, str], run: str) -> Source:
    stats = criterion.stats
    if stats is None or stats.decided_accuracy is None:
        raise CritiqError(f"{run}: criterion '{criterion.name}' has no measured accuracy in criteria.json")
    measured = Measurement(
        accuracy=stats.decided_accuracy,  # over the judged examples, as the citation says
        n=stats.n,
        judged=stats.judged,
        interval=stats.decided_interval,
        manager_model=models.get("manager", "unknown"),
        worker_model=models.get("worker", "unknown"),
        task=task,
        domains=domains,
        run=run,
    )
    title = f"Mined with CritiQ Flow from human preferences on {task or 'the data'}"
    return Source(title=title, year=datetime.date.today().year, measured=measured)
