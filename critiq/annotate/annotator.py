"""Label many examples with the workers and the final criteria: majority vote, streamed, resumable.

Examples flow through a bounded pipeline (:mod:`critiq.annotate.pipeline`) and each record is appended as its
example finishes (fsync'd every ``sync_every`` records); ``resume`` skips ids already written, so after a kill the
output holds exactly one record per input id and finished work costs no request. Examples whose judgments still
fail after retries go to ``<out>.failed.jsonl`` instead and are tried again on resume.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from critiq.annotate.pair_judge import PairJudge, PerCriterionJudge
from critiq.annotate.pipeline import judged
from critiq.annotate.records import Agreement, record_for
from critiq.data.models import Criterion, Example
from critiq.errors import CritiqError
from critiq.io import JsonlAppender, iter_jsonl
from critiq.judge.worker import Worker
from critiq.lock import OutputLock
from critiq.rundir.annotation import AnnotationSummary

log = logging.getLogger(__name__)


def done_ids(out: Path) -> set[str]:
    return {str(row["id"]) for row in iter_jsonl(out)}


def failed_path(out: Path) -> Path:
    return out.with_name(out.name + ".failed.jsonl")


async def annotate(
    examples: Iterable[Example],
    criteria: Sequence[Criterion],
    worker: Worker,
    out: str | Path,
    *,
    margin: int = 0,
    resume: bool = False,
    early_stop: bool = True,
    concurrency: int | None = None,
    sync_every: int = 32,
    judge: PairJudge | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int | None = None,
) -> AnnotationSummary:
    """Judge ``examples`` (any iterable, consumed lazily) and append one record per example to ``out``.

    ``concurrency`` examples are judged at a time (default: the worker client's concurrency), so that many
    requests stay in flight from the first example to the last. ``judge`` replaces the default
    :class:`PerCriterionJudge` (``early_stop`` and ``margin`` configure that default). ``batch_size`` is the
    former name of ``sync_every``.
    """
    out = Path(out)
    with OutputLock(out):  # one process per --out: a second one stops here, before reading or writing
        if out.exists() and out.stat().st_size and not resume:
            raise CritiqError(f"out={out}: already exists; pass resume=True to continue it or choose another file")
        if batch_size is not None:
            sync_every = batch_size
        unit: PairJudge = judge or PerCriterionJudge(worker, criteria, margin=margin, early_stop=early_stop)
        workers = concurrency or int(getattr(worker.client, "concurrency", 8))
        finished = done_ids(out) if resume else set()
        summary = AnnotationSummary(out=str(out), early_stop=early_stop and isinstance(unit, PerCriterionJudge))
        agreement = Agreement(criteria, margin)
        failures = _Failures(failed_path(out))

        def todo() -> Iterator[Example]:
            for example in examples:
                if example.id in finished:
                    summary.skipped += 1
                    continue
                finished.add(example.id)  # an id repeated in the input is judged once
                yield example

        appender: JsonlAppender | None = None  # opened at the first record: a run that fails at once writes nothing
        try:
            async with contextlib.aclosing(judged(todo(), unit, workers)) as results:
                async for example, outcome in results:
                    if outcome.failed:
                        summary.failed += 1
                        failures.add({"id": example.id, "error": outcome.error})
                    else:
                        row = record_for(example, outcome.verdicts, margin)
                        if appender is None:
                            appender = JsonlAppender(out, flush_every=sync_every)
                        appender.write(row)
                        summary.written += 1
                        summary.ties += row.get("preferred", row.get("label")) is None
                        summary.asked += outcome.asked
                        if example.gold is not None:
                            agreement.add(example.gold, outcome.verdicts)
                    if progress is not None:
                        progress(summary.written + summary.skipped + summary.failed)
        finally:
            if appender is not None:
                appender.close()
            failures.close()
        summary.saved = summary.written * len(criteria) - summary.asked
        if summary.failed:
            log.warning(
                "%d examples failed after retries (see %s); rerun with resume=True to retry them",
                summary.failed,
                failures.path,
            )
        if agreement.n:
            summary.criteria = agreement.criteria()
            summary.vote = agreement.vote_stats()
        return summary


class _Failures:
    """``<out>.failed.jsonl``: replaced by this run's failures as they happen; removed when there are none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        if self._handle is None:
            self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        elif self.path.exists():
            self.path.unlink()
