"""`annotate` as a Ray Data job: ``map_batches`` over the pairs, each Ray worker talking to the same server.

The driver streams the examples still to do (``resume`` skips the ids already in ``out``) into a temporary JSONL
file read by Ray on the driver's node (``local://``), so workers need no shared filesystem. Each actor holds one
:class:`~critiq.llm.client.LLMClient` (``concurrency`` requests in flight) and judges its batches with the same
barrier-free pipeline and per-pair unit as the local engine; Ray runs several batches of an actor at once on its
event loop (async UDF), so a batch's slowest pair does not idle the actor. Records come back to the driver, which
appends them to ``out`` as they arrive: the output, ``--resume`` and the failure file behave as with the local
engine. A budget is split evenly across the actors, so the total is never exceeded.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, model_validator

from critiq.annotate.annotator import done_ids, failed_path
from critiq.annotate.config import AnnotateConfig
from critiq.annotate.records import Agreement
from critiq.data.models import Criterion, Example, Pair, Point
from critiq.errors import BudgetExceeded, CritiqError
from critiq.io import JsonlAppender
from critiq.llm.session import ModelSettings
from critiq.lock import OutputLock
from critiq.rundir.annotation import AnnotationSummary

log = logging.getLogger(__name__)

ACTOR_CPUS = 0.5  # an actor mostly waits on the server: half a CPU each leaves room for the read tasks
STOPPED = "stopped: "  # prefix of the error of examples an actor did not judge because its budget was spent
FATAL = "fatal: "  # an error that ends the run (a refused key): Ray would drop its type and message, so it is sent


class RayAnnotateConfig(BaseModel):
    """What every Ray worker needs to rebuild the client and the judge (holds no secret: only the key's name).

    ``settings`` names the model and its server (both required: every worker talks to that server), the requests in
    flight per worker (``concurrency``), retries, cache and budget (split evenly across the workers); ``annotate``
    says how to judge (``swap``, ``judge``, ``seed``, ``language``, ``margin``, ``early_stop``).
    """

    settings: ModelSettings
    annotate: AnnotateConfig = AnnotateConfig()
    batch_size: int = 64

    @model_validator(mode="after")
    def _served(self) -> RayAnnotateConfig:
        if self.settings.api_base is None or not (self.settings.worker_model or self.settings.model):
            raise ValueError(
                "settings: name the model (model=) and its server (api_base=); every Ray worker talks to it"
            )
        return self


class AnnotateUDF:
    """A Ray Data callable class: judges a batch of serialized examples, returns one record (or error) each."""

    def __init__(self, job: dict[str, Any], criteria: list[dict[str, Any]], actors: int) -> None:
        from critiq.annotate.pair_judge import PerCriterionJudge
        from critiq.judge.worker import Worker
        from critiq.llm.cache import RequestCache
        from critiq.llm.session import client_for
        from critiq.llm.usage import Budget
        from critiq.prompts import Prompts

        self.job = RayAnnotateConfig.model_validate(job)
        self.criteria = [Criterion.model_validate(c) for c in criteria]
        settings, options = self.job.settings, self.job.annotate
        budget = Budget(
            max_requests=settings.max_requests // actors if settings.max_requests else None,
            max_cost=settings.max_cost / actors if settings.max_cost else None,
        )
        cache = RequestCache(settings.cache_dir) if settings.cache_dir else None
        client = client_for(settings, "worker", cache=cache, budget=budget)
        worker = Worker(client, Prompts(options.language), swap=options.swap, seed=options.seed, mode=options.judge)
        self.judge = PerCriterionJudge(worker, self.criteria, margin=options.margin, early_stop=options.stops_early)

    async def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        from critiq.annotate.pipeline import judged
        from critiq.annotate.records import record_for

        examples = [_example(line) for line in batch["text"]]
        rows: dict[str, tuple[str, str]] = {}
        try:
            async for example, outcome in judged(examples, self.judge, self.job.settings.concurrency):
                if outcome.failed:
                    rows[example.id] = ("", outcome.error or "failed")
                else:
                    record = record_for(example, outcome.verdicts, self.job.annotate.margin)
                    rows[example.id] = (json.dumps(record, ensure_ascii=False), "")
        except BudgetExceeded as error:  # this actor's share is spent: return what finished, mark the rest
            for example in examples:
                rows.setdefault(example.id, ("", STOPPED + str(error)))
        except CritiqError as error:  # ends the run: the driver raises it with its own message
            for example in examples:
                rows.setdefault(example.id, ("", FATAL + str(error)))
        ids = [e.id for e in examples]
        return {"id": ids, "record": [rows[i][0] for i in ids], "error": [rows[i][1] for i in ids]}


def _line(example: Example) -> str:
    kind = "pair" if isinstance(example, Pair) else "point"
    return json.dumps({"kind": kind, "example": example.model_dump(mode="json")}, ensure_ascii=False)


def _example(line: str) -> Example:
    data = json.loads(line)
    model = Pair if data["kind"] == "pair" else Point
    return model.model_validate(data["example"])


def _gold(record: dict[str, Any]) -> str | None:
    human = record.get("human")
    if human is None:
        return None
    if isinstance(human, str):
        return human.upper()
    return "A" if human == 1 else "B"


def annotate_with_ray(
    examples: Iterable[Example],
    criteria: Sequence[Criterion],
    out: str | Path,
    job: RayAnnotateConfig,
    *,
    resume: bool = False,
    workers: int | None = None,
    address: str | None = None,
) -> AnnotationSummary:
    """Annotate ``examples`` on Ray (``workers`` actors; default: the cluster's CPUs − 1) into ``out``."""
    out = Path(out)
    with OutputLock(out):  # one process per --out: a second one stops here, before reading or writing
        return _annotate_with_ray(examples, criteria, out, job, resume=resume, workers=workers, address=address)


def _annotate_with_ray(
    examples: Iterable[Example],
    criteria: Sequence[Criterion],
    out: Path,
    job: RayAnnotateConfig,
    *,
    resume: bool,
    workers: int | None,
    address: str | None,
) -> AnnotationSummary:
    from critiq.integrations.ray import init_ray

    if out.exists() and out.stat().st_size and not resume:
        raise CritiqError(f"out={out}: already exists; pass resume=True to continue it or choose another file")
    init_ray(address)
    import ray
    import ray.data

    finished = done_ids(out) if resume else set()
    summary = AnnotationSummary(out=str(out), early_stop=job.annotate.stops_early)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".critiq-annotate-", dir=out.parent) as work:
        todo = Path(work) / "todo.jsonl"
        count = 0
        with todo.open("w", encoding="utf-8") as handle:
            for example in examples:
                if example.id in finished:
                    summary.skipped += 1
                    continue
                finished.add(example.id)
                handle.write(_line(example) + "\n")
                count += 1
        if count == 0:
            return summary
        actors = workers or max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
        dataset = ray.data.read_text(f"local://{todo}")
        results = dataset.map_batches(
            AnnotateUDF,
            fn_constructor_kwargs={
                "job": job.model_dump(mode="json"),
                "criteria": [c.model_dump(mode="json") for c in criteria],
                "actors": actors,
            },
            batch_size=job.batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=ACTOR_CPUS,
        )
        context = ray.data.DataContext.get_current()
        bars, context.enable_progress_bars = context.enable_progress_bars, False
        try:
            _collect(results, out, criteria, job.annotate.margin, summary)
        finally:
            context.enable_progress_bars = bars
    return summary


def _collect(results: Any, out: Path, criteria: Sequence[Criterion], margin: int, summary: AnnotationSummary) -> None:
    """Append the actors' records to ``out`` as batches arrive; failures to the failure file; stop on a budget."""
    import ray

    agreement = Agreement(criteria, margin)
    failures: list[dict[str, str]] = []
    stopped: str | None = None
    appender: JsonlAppender | None = None
    try:
        for batch in results.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in batch.to_pylist():
                if row["error"].startswith(FATAL):
                    raise CritiqError(row["error"][len(FATAL) :])
                if row["error"].startswith(STOPPED):
                    stopped = row["error"][len(STOPPED) :]
                elif row["error"]:
                    summary.failed += 1
                    failures.append({"id": row["id"], "error": row["error"]})
                else:
                    record = json.loads(row["record"])
                    if appender is None:
                        appender = JsonlAppender(out)
                    appender.write(record)
                    summary.written += 1
                    summary.ties += record.get("preferred", record.get("label")) is None
                    summary.asked += int(record["asked"])
                    gold = _gold(record)
                    if gold is not None:
                        agreement.add(gold, record["votes"])
            if appender is not None:
                appender.sync()
    except ray.exceptions.RayError as error:
        raise _user_error(error) from None
    finally:
        if appender is not None:
            appender.close()
    summary.saved = summary.written * len(criteria) - summary.asked
    path = failed_path(out)
    if failures:
        path.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures), encoding="utf-8")
    elif path.exists():
        path.unlink()
    if agreement.n:
        summary.criteria = agreement.criteria()
        summary.vote = agreement.vote_stats()
    if stopped is not None:
        raise BudgetExceeded(stopped)


def _user_error(error: BaseException) -> CritiqError:
    """The CritiqError an actor raised (a refused key, an unreachable server), or one line naming the failure."""
    seen: BaseException | None = error
    while seen is not None:
        cause = getattr(seen, "cause", None)
        for candidate in (seen, cause):
            if isinstance(candidate, CritiqError):
                return candidate
        seen = seen.__cause__ or (cause if isinstance(cause, BaseException) and cause is not seen else None)
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return CritiqError(f"annotating on Ray failed: {lines[-1] if lines else type(error).__name__}")
