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
from typing import TYPE_CHECKING, Any, Literal

from critiq.api.inputs import Data, Model, as_criteria, as_settings, choose, stream
from critiq.api.session import Session, clients_for, settings_for
from critiq.errors import InputError
from critiq.llm.sync import run_sync
from critiq.rundir.annotation import ANNOTATION_FILE, JUDGE_FILE, AnnotationSummary

if TYPE_CHECKING:
    import pandas as pd

    from critiq.data.models import Criterion, Example, Pair
    from critiq.data.shards import ShardSummary
    from critiq.judge.cost import RunEstimate
    from critiq.llm.session import ModelSettings
    from critiq.llm.usage import Usage
    from critiq.mine.result import FlowResult

Swap = Literal["random", "both", "none"]
Judge = Literal["per-criterion", "all-in-one", "overall"]
Backend = Literal["http", "vllm-offline"]
Engine = Literal["local", "ray"]
SWAPS: tuple[Swap, ...] = ("random", "both", "none")
JUDGES: tuple[Judge, ...] = ("per-criterion", "all-in-one", "overall")
BACKENDS: tuple[Backend, ...] = ("http", "vllm-offline")
ENGINES: tuple[Engine, ...] = ("local", "ray")


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
def _worker(backend: Backend, settings: ModelSettings, session: Session | None) -> Iterator[tuple[Any, Any]]:
    """The workers' client (any server or provider over HTTP, or vLLM offline batch on a local GPU) and the clients
    it belongs to (None for vLLM offline)."""
    if backend == "vllm-offline":
        from critiq.llm.cache import RequestCache
        from critiq.llm.vllm_offline import VLLMOfflineClient

        if not settings.model:
            raise InputError("`backend` vllm-offline needs model= (a Hugging Face model name or path)")
        cache = RequestCache(settings.cache_dir) if settings.cache_dir else None
        yield VLLMOfflineClient(settings.model, cache=cache, max_tokens=settings.worker_max_tokens), None
        return
    with clients_for(None if session else settings, None, session) as clients:
        yield clients.worker, clients


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


async def aannotate(
    data: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    out: str | Path | None = None,
    corpus: bool = False,
    max_pairs: int | None = None,
    length_matched: bool = True,
    text_field: str = "text",
    max_chars: int | None = None,
    margin: int = 0,
    swap: Swap = "random",
    judge: Judge = "per-criterion",
    early_stop: bool = True,
    resume: bool = False,
    seed: int = 0,
    language: str = "en",
    backend: Backend = "http",
    engine: Engine = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    shards: str | None = None,
    shard_rows: int | None = None,
    source_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    record: str = ANNOTATION_FILE,
) -> AnnotateResult:
    """The async form of :func:`annotate` (the same arguments).

    Example::

        labels = await critiq.aannotate(pairs, "run/mine/criteria.json", model="gpt-4o-mini")
    """
    from critiq.annotate import annotate as annotate_examples
    from critiq.judge.worker import Worker
    from critiq.prompts import Prompts
    from critiq.rundir.annotation import record_annotation

    swap, judge, backend, engine = _checked(swap, judge, backend, engine)
    voters, examples = _plan(data, criteria, judge, corpus, max_pairs, length_matched, text_field, max_chars, seed)
    # one request answers every criterion (all-in-one) or none is asked (overall): nothing to stop early
    early_stop = early_stop and judge == "per-criterion"
    settings = settings_for(model, api_base, session)
    with tempfile.TemporaryDirectory(prefix="critiq-annotate-") as scratch:
        target = Path(out) if out is not None else Path(scratch) / "labeled.jsonl"
        if engine == "ray":
            summary = _on_ray(
                examples,
                voters,
                target,
                settings,
                swap,
                judge,
                seed,
                language,
                margin,
                early_stop,
                resume,
                ray_workers,
                ray_address,
                backend,
            )
            usage, model_name, form, embedded = None, _role_model(settings), None, False
        else:
            with _worker(backend, settings, session) as (client, clients):
                worker = Worker(client, Prompts(language), swap=swap, seed=seed, mode=judge)
                before = client.usage.model_copy()  # a session's clients may have run other steps
                # the offline engine batches what is pending: give it a batch's worth of pairs at a time
                concurrency = int(getattr(client, "batch_size", settings.concurrency))
                summary = await annotate_examples(
                    examples,
                    voters,
                    worker,
                    target,
                    margin=margin,
                    resume=resume,
                    early_stop=early_stop,
                    concurrency=concurrency,
                    progress=progress,
                )
                usage = _spent(before, client.usage)
                model_name, form = client.config.model, _form(client)
                embedded = clients is not None and clients.is_embedded(client)
        written: Path | None = None
        if out is not None:
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
            card_model = settings.worker_model or settings.model
            source = source_name or _describe(data)
            sharded = _write_shards(summary, source, voters, target, card_model, shards, shard_rows) if shards else None
            return AnnotateResult(summary, voters, target, written, usage, model_name, sharded)
        from critiq.io import iter_jsonl

        rows = list(iter_jsonl(target)) if target.exists() else []
        return AnnotateResult(summary, voters, None, None, usage, model_name, None, rows)


def _checked(swap: str, judge: str, backend: str, engine: str) -> tuple[Swap, Judge, Backend, Engine]:
    return choose("swap", swap, SWAPS), choose("judge", judge, JUDGES), *_where(backend, engine)


def _where(backend: str, engine: str) -> tuple[Backend, Engine]:
    return choose("backend", backend, BACKENDS), choose("engine", engine, ENGINES)


def _plan(
    data: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    judge: Judge,
    corpus: bool,
    max_pairs: int | None,
    length_matched: bool,
    text_field: str,
    max_chars: int | None,
    seed: int,
) -> tuple[list[Criterion], Iterable[Example]]:
    """The criteria that vote and the examples to judge (pairs drawn from a corpus), checked before anything runs."""
    from critiq.annotate import draw_pairs
    from critiq.mine.ablation import OVERALL

    voters = [OVERALL] if judge == "overall" else as_criteria(criteria)
    examples: Iterable[Example] = stream(data, max_chars=max_chars, text_field=text_field)
    if corpus:
        examples = draw_pairs(examples, seed=seed, length_matched=length_matched, max_pairs=max_pairs)
    return voters, examples


def estimate(
    data: Data,
    criteria: Sequence[Criterion] | FlowResult | str | Path,
    *,
    model: Model = None,
    api_base: str | None = None,
    out: str | Path | None = None,
    corpus: bool = False,
    max_pairs: int | None = None,
    length_matched: bool = True,
    text_field: str = "text",
    max_chars: int | None = None,
    margin: int = 0,
    swap: Swap = "random",
    judge: Judge = "per-criterion",
    early_stop: bool = True,
    resume: bool = False,
    seed: int = 0,
    language: str = "en",
    backend: Backend = "http",
    engine: Engine = "local",
    **unused: Any,
) -> RunEstimate:
    """What :func:`annotate` with these arguments would cost (requests, tokens, price), sending nothing."""
    from critiq.annotate.annotator import done_ids
    from critiq.annotate.estimate import estimate_annotate
    from critiq.api.session import role_config
    from critiq.prompts import Prompts

    swap, judge, backend, engine = _checked(swap, judge, backend, engine)
    voters, examples = _plan(data, criteria, judge, corpus, max_pairs, length_matched, text_field, max_chars, seed)
    return estimate_annotate(
        examples,
        voters,
        role_config(as_settings(model, api_base)),
        prompts=Prompts(language),
        swap=swap,
        seed=seed,
        margin=margin,
        early_stop=early_stop and judge == "per-criterion",
        mode=judge,
        skip_ids=done_ids(Path(out)) if resume and out is not None else None,
    )


def _describe(data: Data) -> str:
    from critiq.data.sources import describe

    return describe(data)


def _role_model(settings: ModelSettings) -> str:
    from critiq.llm.local import LOCAL_MODEL

    return settings.worker_model or settings.model or LOCAL_MODEL


def _on_ray(
    examples: Iterable[Example],
    criteria: list[Criterion],
    out: Path,
    settings: ModelSettings,
    swap: Swap,
    judge: Judge,
    seed: int,
    language: str,
    margin: int,
    early_stop: bool,
    resume: bool,
    workers: int | None,
    address: str | None,
    backend: Backend,
) -> AnnotationSummary:
    from critiq.annotate.ray_job import RayAnnotateConfig, annotate_with_ray
    from critiq.api.session import role_config

    if backend != "http":
        raise InputError("`engine` ray talks to a server: use `backend` http (the default)")
    if settings.api_base is None or not (settings.worker_model or settings.model):
        raise InputError("`engine` ray needs model= and api_base= (every Ray worker talks to that server)")
    config = role_config(settings)
    job = RayAnnotateConfig(
        model=config,
        concurrency=settings.concurrency,
        max_retries=settings.max_retries,
        cache_dir=str(settings.cache_dir) if settings.cache_dir else None,
        max_requests=settings.max_requests,
        max_cost=settings.max_cost,
        swap=swap,
        mode=judge,
        seed=seed,
        language=language,
        margin=margin,
        early_stop=early_stop,
    )
    return annotate_with_ray(examples, criteria, out, job, resume=resume, workers=workers, address=address)


def _write_shards(
    summary: AnnotationSummary,
    source: str,
    criteria: list[Criterion],
    out: Path,
    model: str | None,
    shards: str,
    shard_rows: int | None,
) -> ShardSummary:
    """The finished records (the JSONL file stays the resumable record) as Parquet shards in Hub layout."""
    from critiq.data.cards import annotated_card
    from critiq.data.shards import DEFAULT_SHARD_ROWS, jsonl_to_shards

    counts = {"records": summary.written + summary.skipped, "failed": summary.failed, "ties": summary.ties}
    card = annotated_card(source, criteria, model, counts)
    return jsonl_to_shards(out, shards, card, shard_rows=shard_rows or DEFAULT_SHARD_ROWS)


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
    ``annotate.json`` beside it; without ``out`` the records stay in memory (``result.rows()``). Options: ``margin``,
    ``swap`` (random | both | none), ``judge`` (per-criterion | all-in-one | overall), ``early_stop``, ``seed``,
    ``language``, ``max_chars``, ``backend`` (http | vllm-offline), ``engine`` (local | ray, with ``ray_address``,
    ``ray_workers``), ``shards`` / ``shard_rows`` (also write Parquet shards), ``progress``.

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
