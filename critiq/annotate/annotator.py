"""Label many examples with the workers and the final criteria: majority vote, streamed, resumable.

Records are appended as batches finish (fsync'd); ``resume`` skips ids already written, so after a kill the output
holds exactly one record per input id and finished work costs no request. Examples whose judgments still fail after
retries go to ``<out>.failed.jsonl`` instead and are tried again on resume.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair
from critiq.errors import CritiqError
from critiq.io import JsonlAppender, iter_jsonl, write_jsonl
from critiq.mine.judge import Worker
from critiq.mine.metrics import criterion_stats
from critiq.mine.vote import majority, vote_stats

log = logging.getLogger(__name__)


class AnnotationSummary(BaseModel):
    """Counts of a run, and agreement with human labels where the input had them."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    ties: int = 0
    out: str = ""
    criteria: dict[str, CriterionStats] = {}
    vote: CriterionStats | None = None


def record_for(example: Example, verdicts: dict[str, str], margin: int) -> dict[str, Any]:
    """The output row: the vote's label, its margin (A votes − B votes) and each criterion's verdict."""
    label = majority(list(verdicts.values()), margin)
    a_votes = sum(v == "A" for v in verdicts.values())
    b_votes = sum(v == "B" for v in verdicts.values())
    human = example.gold
    row: dict[str, Any] = {"id": example.id}
    if isinstance(example, Pair):
        row |= {"a": example.a, "b": example.b, "preferred": label.lower() if label else None}
    else:
        row |= {"text": example.text, "label": None if label is None else int(label == "A")}
    row |= {"margin": a_votes - b_votes, "votes": verdicts, "domain": example.domain}
    if human is not None:
        row["human"] = human.lower() if isinstance(example, Pair) else int(human == "A")
    if example.metadata:
        row["metadata"] = example.metadata
    return row


def done_ids(out: Path) -> set[str]:
    return {str(row["id"]) for row in iter_jsonl(out)}


def _batches(items: Iterable[Example], size: int) -> Iterator[list[Example]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


async def annotate(
    examples: Iterable[Example],
    criteria: Sequence[Criterion],
    worker: Worker,
    out: str | Path,
    *,
    margin: int = 0,
    resume: bool = False,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> AnnotationSummary:
    """Judge ``examples`` (any iterable, consumed lazily) and append one record per example to ``out``."""
    out = Path(out)
    failed_path = out.with_name(out.name + ".failed.jsonl")
    if out.exists() and out.stat().st_size and not resume:
        raise CritiqError(f"--out {out}: already exists; pass --resume to continue it or choose another file")
    finished = done_ids(out) if resume else set()
    summary = AnnotationSummary(out=str(out))
    failures: list[dict[str, Any]] = []
    labelled: list[tuple[Example, dict[str, str]]] = []
    appender: JsonlAppender | None = None  # opened at the first record: a run that fails at once writes nothing
    try:
        for batch in _batches(examples, batch_size):
            todo = [e for e in batch if e.id not in finished]
            summary.skipped += len(batch) - len(todo)
            if not todo:
                continue
            await worker.judge(todo, criteria)
            for example in todo:
                judgments = [worker.verdict(c, example) for c in criteria]
                if any(j is None or j.failed for j in judgments):
                    summary.failed += 1
                    failures.append(
                        {
                            "id": example.id,
                            "error": next((j.rationale for j in judgments if j and j.failed), "not judged"),
                        }
                    )
                    continue
                verdicts = {c.name: j.verdict for c, j in zip(criteria, judgments, strict=True) if j is not None}
                row = record_for(example, verdicts, margin)
                summary.ties += row.get("preferred", row.get("label")) is None
                if appender is None:
                    appender = JsonlAppender(out, flush_every=batch_size)
                appender.write(row)
                finished.add(example.id)
                summary.written += 1
                if example.gold is not None:
                    labelled.append((example, verdicts))
            if appender is not None:
                appender.sync()
            # the memo only needs the current batch: drop it so memory stays flat on a long corpus
            worker.memo.clear()
            if progress is not None:
                progress(summary.written + summary.skipped + summary.failed)
    finally:
        if appender is not None:
            appender.close()
    if failures:
        write_jsonl(failed_path, failures)
        log.warning(
            "%d examples failed after retries (see %s); rerun with --resume to retry them", len(failures), failed_path
        )
    elif failed_path.exists():
        failed_path.unlink()
    if labelled:
        _agreement(summary, labelled, criteria, margin)
    return summary


def _agreement(
    summary: AnnotationSummary,
    labelled: list[tuple[Example, dict[str, str]]],
    criteria: Sequence[Criterion],
    margin: int,
) -> None:
    gold = {e.id: e.gold for e, _ in labelled}
    for criterion in criteria:
        judgments = [
            Judgment(example_id=e.id, criterion=criterion.name, verdict=v[criterion.name])  # type: ignore[arg-type]
            for e, v in labelled
        ]
        summary.criteria[criterion.name] = criterion_stats(judgments, gold)
    predicted = [majority(list(v.values()), margin) for _, v in labelled]
    summary.vote = vote_stats(predicted, [gold[e.id] or "" for e, _ in labelled])
