"""``critiq.annotate`` and ``critiq.judge``: the workers label pairs with given criteria, and record the run.

Both write the labelled records to ``out`` (JSONL, appended as they finish, resumable) and ``annotate.json`` (or
``judge.json``) beside it, which ``critiq.report`` reads; with no ``out`` the records stay in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from critiq.api.inputs import Data, Model, as_criteria, as_settings, choose, stream
from critiq.api.session import Session, settings_for
from critiq.errors import InputError
from critiq.llm.session import open_worker, role_config
from critiq.llm.sync import run_sync
from critiq.rundir.annotation import ANNOTATION_FILE, JUDGE_FILE, AnnotationSummary

if TYPE_CHECKING:
    import pandas as pd

    from critiq.annotate.config import AnnotateConfig, Backend
    from critiq.data.models import Criterion, Example, Pair
    from critiq.data.shards import ShardSummary
    from critiq.judge.cost import RunEstimate
    from critiq.llm.session import ModelSettings
    from critiq.llm.usage import Usage
    from critiq.mine.result import FlowResult


@dataclass
class AnnotateResult:
    """What :func:`annotate` (or :func:`judge`) did: the counts and agreement with human labels (``summary``), the
    requests it cost, where the records and the run's record are, and the records themselves (:meth:`rows`)."""

    summary: AnnotationSummary
    criteria: list[Criterion] = field(default_factory=list)
    out: Path | None = None
    record: Path | None = None
    usage: Usage | None = None
    model: str | None = None
    shards: ShardSummary | None = None
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    def rows(self) -> list[dict[str, Any]]:
        """The labelled records (``id``, ``a``, ``b``, ``preferred``, ``votes``...), in the order they finished."""
        if self._rows is not None:
            return list(self._rows)
        from critiq.io import iter_jsonl

        return list(iter_jsonl(self.out)) if self.out is not None and self.out.exists() else []

    def pairs(self) -> list[Pair]:
        """The records that got a label, as pairs (what :func:`train_scorer` learns from)."""
        from critiq.data.loaders import load_examples
        from critiq.data.models import Pair

        rows = [row for row in self.rows() if row.get("preferred") is not None]
        if not rows:
            return []
        return [example for example in load_examples(rows, name="annotations") if isinstance(example, Pair)]

    def to_pandas(self) -> pd.DataFrame:
        """The records as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows())


@contextmanager
def _worker(backend: Backend, settings: ModelSettings, session: Session | None) -> Iterator[tuple[Any, bool]]:
    """The workers' client (a session's, any server or provider over HTTP, or vLLM offline batch on a local GPU) and
    whether it talks to the embedded model."""
    if session is not None and backend == "http":
        worker = session.clients.worker
        yield worker, session.clients.is_embedded(worker)
        return
    with open_worker(settings, backend) as client:
        yield client, backend == "http" and (settings.worker_model or settings.model) is None  # no model named


def _form(client: Any) -> str | None:
    """The structured-output form the worker's requests took (JSON mode when the provider refused the schema)."""
    form = getattr(client, "form", None)
    memory = getattr(client, "memory", None)
    if memory is not None and client.config.model in getattr(memory, "json_mode", ()):
        return f"json_object (the provider refused {form})"
    return str(form) if form is not None else None


def _spent(before: Usage, after: Usage) -> Usage:
    from critiq.llm.usage import Usage

    return Usage(**{name: getattr(after, name) - getattr(before, name) for name in Usage.model_fields})


def as_config(config: AnnotateConfig | None, options: dict[str, Any]) -> AnnotateConfig:
    """``config`` with ``options`` (its fields by name) over it; a bad value is one line naming its parameter."""
    from pydantic import ValidationError

    from critiq.annotate.config import BACKENDS, ENGINES, MODES, SWAPS, AnnotateConfig

    unknown = sorted(set(options) - set(AnnotateConfig.model_fields))
    if unknown:
        raise InputError(f"unknown option {unknown[0]}= (options: {', '.join(AnnotateConfig.model_fields)})")
    for name, choices in (("swap", SWAPS), ("judge", MODES), ("backend", BACKENDS), ("engine", ENGINES)):
        if name in options:
            options[name] = choose(name, options[name], choices)
    try:
        return AnnotateConfig(**{**(config.model_dump() if config else {}), **options})
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{name}={first.get('input')!r}: {first['msg'].lower()}") from None


async def aannotate(
    data: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    out: str | Path | None = None,
    config: AnnotateConfig | None = None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    source_name: str | None = None,
    record: str = ANNOTATION_FILE,
    **options: Any,
) -> AnnotateResult:
    """The async form of :func:`annotate` (the same arguments).

    Example::

        labels = await critiq.aannotate(pairs, "run/mine/criteria.json", model="gpt-4o-mini")
    """
    from critiq.annotate import annotate as annotate_examples
    from critiq.judge.worker import Worker
    from critiq.prompts import Prompts
    from critiq.rundir.annotation import record_annotation

    run = as_config(config, options)
    voters, examples = _plan(data, criteria, run)
    settings = settings_for(model, api_base, session)
    with tempfile.TemporaryDirectory(prefix="critiq-annotate-") as scratch:
        target = Path(out) if out is not None else Path(scratch) / "labeled.jsonl"
        if run.engine == "ray":
            summary = _on_ray(examples, voters, target, settings, run, resume)
            usage, model_name, form, embedded = None, role_config(settings).model, None, False
        else:
            with _worker(run.backend, settings, session) as (client, embedded):
                worker = Worker(client, Prompts(run.language), swap=run.swap, seed=run.seed, mode=run.judge)
                before = client.usage.model_copy()  # a session's clients may have run other steps
                # the offline engine batches what is pending: give it a batch's worth of pairs at a time
                concurrency = int(getattr(client, "batch_size", settings.concurrency))
                summary = await annotate_examples(
                    examples,
                    voters,
                    worker,
                    target,
                    margin=run.margin,
                    resume=resume,
                    early_stop=run.stops_early,
                    concurrency=concurrency,
                    progress=progress,
                )
                usage = _spent(before, client.usage)
                model_name, form = client.config.model, _form(client)
        if out is None:
            from critiq.io import iter_jsonl

            rows = list(iter_jsonl(target)) if target.exists() else []
            return AnnotateResult(summary, voters, None, None, usage, model_name, None, rows)
    from critiq.annotate.annotator import failed_path

    written = record_annotation(
        target,
        summary,
        usage,
        model=model_name,
        form=form,
        failed=failed_path(target),
        uses_local_model=embedded,
        name=record,
    )
    sharded = None
    if run.shards:
        card_model = settings.worker_model or settings.model
        sharded = _write_shards(summary, source_name or _describe(data), voters, target, card_model, run)
    return AnnotateResult(summary, voters, target, written, usage, model_name, sharded)


def _plan(
    data: Data, criteria: Sequence[Criterion] | FlowResult | str | Path, run: AnnotateConfig
) -> tuple[list[Criterion], Iterable[Example]]:
    """The criteria that vote and the examples to judge (pairs drawn from a corpus), checked before anything runs."""
    from critiq.annotate import draw_pairs
    from critiq.mine.ablation import OVERALL

    voters = [OVERALL] if run.judge == "overall" else as_criteria(criteria)
    examples: Iterable[Example] = stream(data, max_chars=run.max_chars, text_field=run.text_field)
    if run.corpus:
        examples = draw_pairs(examples, seed=run.seed, length_matched=run.length_matched, max_pairs=run.max_pairs)
    return voters, examples


def estimate(
    data: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    out: str | Path | None = None,
    config: AnnotateConfig | None = None,
    resume: bool = False,
    **options: Any,
) -> RunEstimate:
    """What :func:`annotate` with these arguments would cost (requests, tokens, price), sending nothing."""
    from critiq.annotate.annotator import done_ids
    from critiq.annotate.estimate import estimate_annotate
    from critiq.prompts import Prompts

    run = as_config(config, options)
    voters, examples = _plan(data, criteria, run)
    return estimate_annotate(
        examples,
        voters,
        role_config(as_settings(model, api_base)),
        prompts=Prompts(run.language),
        swap=run.swap,
        seed=run.seed,
        margin=run.margin,
        early_stop=run.stops_early,
        mode=run.judge,
        skip_ids=done_ids(Path(out)) if resume and out is not None else None,
    )


def _describe(data: Data) -> str:
    from critiq.data.sources import describe

    return describe(data)


def _on_ray(
    examples: Iterable[Example],
    criteria: list[Criterion],
    out: Path,
    settings: ModelSettings,
    run: AnnotateConfig,
    resume: bool,
) -> AnnotationSummary:
    from critiq.annotate.ray_job import RayAnnotateConfig, annotate_with_ray

    if run.backend != "http":
        raise InputError("`engine` ray talks to a server: use `backend` http (the default)")
    if settings.api_base is None or not (settings.worker_model or settings.model):
        raise InputError("`engine` ray needs model= and api_base= (every Ray worker talks to that server)")
    job = RayAnnotateConfig(settings=settings, annotate=run)
    return annotate_with_ray(
        examples, criteria, out, job, resume=resume, workers=run.ray_workers, address=run.ray_address
    )


def _write_shards(
    summary: AnnotationSummary,
    source: str,
    criteria: list[Criterion],
    out: Path,
    model: str | None,
    run: AnnotateConfig,
) -> ShardSummary:
    """The finished records (the JSONL file stays the resumable record) as Parquet shards in Hub layout."""
    from critiq.data.cards import annotated_card
    from critiq.data.shards import DEFAULT_SHARD_ROWS, jsonl_to_shards

    assert run.shards is not None
    counts = {"records": summary.written + summary.skipped, "failed": summary.failed, "ties": summary.ties}
    card = annotated_card(source, criteria, model, counts)
    return jsonl_to_shards(out, run.shards, card, shard_rows=run.shard_rows or DEFAULT_SHARD_ROWS)


def annotate(
    data: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    out: str | Path | None = None,
    **options: Any,
) -> AnnotateResult:
    """Label many pairs with the workers and ``criteria`` (a majority vote per pair).

    ``data``: pairs, or an unlabeled corpus with ``corpus=True`` (pairs are drawn from it: ``max_pairs``,
    ``length_matched``, ``text_field``). ``criteria``: a list, a :class:`FlowResult` (its voters) or a criteria
    file. ``out`` gets the records (JSONL, appended as they finish; ``resume=True`` continues it) and
    ``annotate.json`` beside it; without ``out`` the records stay in memory (``result.rows()``). ``options`` are
    :class:`~critiq.annotate.AnnotateConfig` fields (or pass ``config=``): ``margin``, ``swap`` (random | both |
    none), ``judge`` (per-criterion | all-in-one | overall), ``early_stop``, ``seed``, ``language``, ``max_chars``,
    ``backend`` (http | vllm-offline), ``engine`` (local | ray, with ``ray_address``, ``ray_workers``), ``shards`` /
    ``shard_rows`` (also write Parquet shards); ``progress`` is called with the count of examples done.

    Example::

        labels = critiq.annotate(corpus_df, result, corpus=True, max_pairs=200, out="run/labeled.jsonl")
        labels.to_pandas().head()
    """
    return run_sync(aannotate(data, criteria, model=model, api_base=api_base, session=session, out=out, **options))


async def ajudge(
    pairs: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    out: str | Path | None = None,
    early_stop: bool = False,
    **options: Any,
) -> AnnotateResult:
    """The async form of :func:`judge` (the same arguments).

    Example::

        judged = await critiq.ajudge(valid_df, result, session=session)
    """
    return await aannotate(
        pairs,
        criteria,
        model=model,
        api_base=api_base,
        session=session,
        out=out,
        early_stop=early_stop,
        record=JUDGE_FILE,
        **options,
    )


def judge(
    pairs: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    out: str | Path | None = None,
    early_stop: bool = False,
    **options: Any,
) -> AnnotateResult:
    """Judge pairs against ``criteria``; with human labels, ``result.summary`` holds each criterion's accuracy and
    the vote's (``summary.criteria``, ``summary.vote``). Takes :func:`annotate`'s options; every criterion is asked
    (``early_stop=False``) and the run's record is ``judge.json`` beside ``out``.

    Example::

        judged = critiq.judge("valid_pairs.jsonl", "run/mine/criteria.json")
        print(judged.summary.vote)
    """
    return run_sync(
        ajudge(
            pairs, criteria, model=model, api_base=api_base, session=session, out=out, early_stop=early_stop, **options
        )
    )
