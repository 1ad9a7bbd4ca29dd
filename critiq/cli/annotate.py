"""`critiq judge` and `critiq annotate`: the workers label pairs with given criteria."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from critiq.cli.app import app
from critiq.cli.choices import choose
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console, criteria_table, progress_bar
from critiq.cli.groups import Flags, option_group
from critiq.cli.options import model_options
from critiq.errors import CritiqError
from critiq.judge.modes import SwapMode, WorkerMode
from critiq.llm.config import ModelConfig
from critiq.llm.session import ModelSettings
from critiq.stats import interval_text, pct

if TYPE_CHECKING:
    from critiq.annotate import AnnotationSummary
    from critiq.data.models import Criterion, Example
    from critiq.judge.cost import RunEstimate
    from critiq.llm.usage import Usage

EARLY_STOP_HELP = "ask criteria most accurate first and stop once the vote cannot change (same labels)"
DRY_RUN_HELP = "print the requests, tokens and price the run would take, and send nothing"
JUDGE_HELP = (
    "per-criterion (one request per criterion) | all-in-one (one request answering every criterion) | "
    "overall (the criterion-free baseline: which text is better overall; --criteria is not read)"
)
SWAPS: tuple[SwapMode, ...] = ("random", "both", "none")
MODES: tuple[WorkerMode, ...] = ("per-criterion", "all-in-one", "overall")


@contextmanager
def _worker_client(backend: str, settings: ModelSettings) -> Iterator[Any]:
    """The workers' client: any server or provider over HTTP, or vLLM offline batch on a local GPU."""
    if backend == "vllm-offline":
        from critiq.llm.cache import RequestCache
        from critiq.llm.vllm_offline import VLLMOfflineClient

        if not settings.model:
            raise CritiqError("--backend vllm-offline needs --model (a Hugging Face model name or path)")
        cache = RequestCache(settings.cache_dir) if settings.cache_dir else None
        yield VLLMOfflineClient(settings.model, cache=cache, max_tokens=settings.worker_max_tokens)
        return
    from critiq.llm.session import open_clients

    with open_clients(settings) as clients:
        yield clients.worker


@dataclass
class AnnotateOptions:
    """The flags of `judge` and `annotate` beyond the shared model flags."""

    margin: int = 0
    swap: str = "random"
    judge: str = "per-criterion"
    resume: bool = False
    max_chars: int | None = None
    corpus: bool = False
    max_pairs: int | None = None
    length_matched: bool = False
    seed: int = 0
    language: str = "en"
    text_field: str = "text"
    early_stop: bool = True
    dry_run: bool = False
    backend: str = "http"
    engine: str = "local"
    ray_address: str | None = None
    ray_workers: int | None = None
    data: DataOptions = field(default_factory=DataOptions)
    shards: str | None = None
    shard_rows: int | None = None
    record: str = "annotate.json"  # the run's record beside --out (`critiq judge` writes judge.json)


def role_config(settings: ModelSettings, role: str = "worker") -> ModelConfig:
    """The worker's or manager's model as the flags name it, without starting anything (dry runs, Ray workers)."""
    from critiq.llm.local import LOCAL_MODEL

    model = (settings.worker_model if role == "worker" else settings.manager_model) or settings.model
    max_tokens = settings.worker_max_tokens if role == "worker" else settings.manager_max_tokens
    if model is None:  # no model named: the embedded one, whatever keys are exported (as open_clients)
        return ModelConfig(model=LOCAL_MODEL, api_base="embedded llama.cpp", max_tokens=max_tokens)
    return ModelConfig(
        model=model,
        api_base=settings.api_base,
        api_key_env=settings.api_key_env,
        timeout=settings.timeout,
        max_tokens=max_tokens,
        temperature=settings.temperature,
        schema_mode=settings.schema_mode,
    )


def print_estimate(run: RunEstimate) -> None:
    """The dry run's table: requests, tokens and price per model role; says that nothing was sent."""
    table = Table("role", "model", "requests (upper)", "expected", "prompt tokens", "completion ≤", "price")
    for role, part in run.roles.items():
        table.add_row(
            role,
            part.model,
            f"{part.requests_upper:,}",
            f"{part.requests_expected:,.0f}",
            f"{part.prompt_tokens_expected:,} (≤ {part.prompt_tokens_upper:,})",
            f"{part.completion_tokens_upper:,}",
            _dollars(part.cost_expected, part.cost_upper, part.price),
        )
    console.print(table)
    stop = " with early stop" if run.early_stop else ""
    console.print(
        f"dry run of {run.command}: {run.examples:,} examples × {run.criteria} criteria{stop}; "
        f"total {_dollars(run.cost_expected, run.cost_upper, 'unknown')} · nothing was sent"
    )


def _dollars(expected: float | None, upper: float | None, reason: str) -> str:
    if expected is None or upper is None:
        return reason
    return f"{_money(expected)} (≤ {_money(upper)})"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _annotate_command(
    input_path: str, criteria_path: Path, out: Path, settings: ModelSettings, options: AnnotateOptions
) -> None:
    from critiq.annotate import annotate, draw_pairs
    from critiq.annotate.annotator import done_ids
    from critiq.data.criteria import load_criteria
    from critiq.data.loaders import stream_examples
    from critiq.judge.worker import Worker
    from critiq.llm.client import run_sync
    from critiq.mine.ablation import OVERALL
    from critiq.prompts import Prompts

    swap = choose("--swap", options.swap, SWAPS)
    mode = choose("--judge", options.judge, MODES)
    choose("--backend", options.backend, ("http", "vllm-offline"))
    choose("--engine", options.engine, ("local", "ray"))
    criteria = [OVERALL] if mode == "overall" else load_criteria(criteria_path)
    # one request answers every criterion (all-in-one) or none is asked (overall): nothing to stop early
    early_stop = options.early_stop and mode == "per-criterion"
    max_chars, text_field = options.max_chars, options.text_field
    # a local input is checked whole before anything is written, then streamed; a remote one is checked as it streams
    _, examples = stream_examples(options.data.source(input_path), max_chars=max_chars, text_field=text_field)
    if options.corpus:
        examples = draw_pairs(
            examples,
            seed=options.seed,
            length_matched=options.length_matched,
            max_pairs=options.max_pairs,
        )
    if options.dry_run:
        from critiq.annotate.estimate import estimate_annotate

        run = estimate_annotate(
            examples,
            criteria,
            role_config(settings),
            prompts=Prompts(options.language),
            swap=swap,
            seed=options.seed,
            margin=options.margin,
            early_stop=early_stop,
            mode=mode,
            skip_ids=done_ids(out) if options.resume else None,
        )
        print_estimate(run)
        return
    if options.engine == "ray":
        summary = _annotate_on_ray(examples, criteria, out, settings, replace(options, early_stop=early_stop))
        _record(out, summary, None, role_config(settings).model, None, options.record)
        _print_summary(summary, criteria, out, None)
        _write_shards(summary, input_path, criteria, out, settings, options)
        return
    with _worker_client(options.backend, settings) as client, progress_bar() as update:
        worker = Worker(client, Prompts(options.language), swap=swap, seed=options.seed, mode=mode)
        # the offline engine batches what is pending: give it a batch's worth of pairs at a time
        concurrency = int(getattr(client, "batch_size", settings.concurrency))
        summary = run_sync(
            annotate(
                examples,
                criteria,
                worker,
                out,
                margin=options.margin,
                resume=options.resume,
                early_stop=early_stop,
                concurrency=concurrency,
                progress=lambda n: update("annotate", n, max(n, options.max_pairs or n)),
            )
        )
    embedded = options.backend == "http" and (settings.worker_model or settings.model) is None  # no model named
    _record(out, summary, client.usage, client.config.model, _form(client), options.record, embedded)
    _print_summary(summary, criteria, out, client.usage)
    _write_shards(summary, input_path, criteria, out, settings, options)


def _form(client: Any) -> str | None:
    """The structured-output form the worker's requests took (JSON mode when the provider refused the schema)."""
    form = getattr(client, "form", None)
    memory = getattr(client, "memory", None)
    if memory is not None and client.config.model in getattr(memory, "json_mode", ()):
        return f"json_object (the provider refused {form})"
    return str(form) if form is not None else None


def _record(
    out: Path,
    summary: AnnotationSummary,
    usage: Usage | None,
    model: str,
    form: str | None,
    name: str,
    embedded: bool = False,
) -> None:
    """``annotate.json`` (``judge.json`` for `critiq judge`) beside ``--out``, for ``critiq report``
    (docs/run_directory.md); a resume that found nothing to do leaves it as it was."""
    from critiq.annotate.annotator import failed_path
    from critiq.rundir.annotation import record_annotation

    record_annotation(
        out, summary, usage, model=model, form=form, failed=failed_path(out), uses_local_model=embedded, name=name
    )


def _write_shards(
    summary: AnnotationSummary,
    input_path: str,
    criteria: list[Criterion],
    out: Path,
    settings: ModelSettings,
    options: AnnotateOptions,
) -> None:
    """``--shards DIR``: the finished records (the JSONL file stays the resumable record) as Hub-layout shards."""
    if not options.shards:
        return
    from critiq.data.cards import annotated_card
    from critiq.data.shards import DEFAULT_SHARD_ROWS, jsonl_to_shards

    counts = {"records": summary.written + summary.skipped, "failed": summary.failed, "ties": summary.ties}
    card = annotated_card(input_path, criteria, settings.worker_model or settings.model, counts)
    written = jsonl_to_shards(out, options.shards, card, shard_rows=options.shard_rows or DEFAULT_SHARD_ROWS)
    console.print(f"{len(written.shards)} shards ({written.rows} records) in {options.shards}")


def _annotate_on_ray(
    examples: Iterable[Example], criteria: list[Criterion], out: Path, settings: ModelSettings, options: AnnotateOptions
) -> AnnotationSummary:
    from critiq.annotate.ray_job import RayAnnotateConfig, annotate_with_ray

    if options.backend != "http":
        raise CritiqError("--engine ray talks to a server: use --backend http (the default)")
    if settings.api_base is None or not (settings.worker_model or settings.model):
        raise CritiqError("--engine ray needs --model and --api-base (every Ray worker talks to that server)")
    job = RayAnnotateConfig(
        model=role_config(settings),
        concurrency=settings.concurrency,
        max_retries=settings.max_retries,
        cache_dir=str(settings.cache_dir) if settings.cache_dir else None,
        max_requests=settings.max_requests,
        max_cost=settings.max_cost,
        swap=choose("--swap", options.swap, SWAPS),
        mode=choose("--judge", options.judge, MODES),
        seed=options.seed,
        language=options.language,
        margin=options.margin,
        early_stop=options.early_stop,
    )
    return annotate_with_ray(
        examples,
        criteria,
        out,
        job,
        resume=options.resume,
        workers=options.ray_workers,
        address=options.ray_address,
    )


def _print_summary(summary: AnnotationSummary, criteria: list[Criterion], out: Path, usage: Usage | None) -> None:
    spent = f" · requests {usage.requests} · cache hits {usage.cache_hits}" if usage is not None else ""
    console.print(
        f"wrote {summary.written} records to {out} (skipped {summary.skipped} already done, "
        f"{summary.failed} failed, {summary.ties} ties){spent}"
    )
    if summary.early_stop and summary.written:
        full = summary.written * len(criteria)
        console.print(
            f"early stop: {summary.asked} of {full} criterion verdicts asked ({pct(summary.saved / full)} saved)"
        )
    if summary.criteria:
        criteria_table(criteria, summary.criteria)
        assert summary.vote is not None
        console.print(
            f"majority vote accuracy {pct(summary.vote.accuracy)} (ties wrong), decided accuracy "
            f"{pct(summary.vote.decided_accuracy)} {interval_text(summary.vote.decided_interval)} "
            f"(coverage {pct(summary.vote.coverage)}, n {summary.vote.n})"
        )


_RUN_FLAGS: Flags = {
    "margin": (Annotated[int, typer.Option(min=0, help="votes one side needs beyond the other")], 0),
    "swap": (Annotated[str, typer.Option(help="order of the two texts: random | both | none")], "random"),
    "judge": (Annotated[str, typer.Option(help=JUDGE_HELP)], "per-criterion"),
    "resume": (Annotated[bool, typer.Option("--resume", help="skip ids already in --out")], False),
    "max_chars": (Annotated[int | None, typer.Option(min=1)], None),
    "language": (Annotated[str, typer.Option()], "en"),
    "seed": (Annotated[int, typer.Option()], 0),
    "dry_run": (Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)], False),
}
run_options = option_group("run", _RUN_FLAGS, lambda values: AnnotateOptions(**values))
"""The flags `judge` and `annotate` share; the command receives them as ``run: AnnotateOptions``."""


@app.command()
@model_options
@data_options
@run_options
def judge(
    pairs: Annotated[str, typer.Argument(help=f"pairs or points to judge: {DATA_HELP}")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`, or your own")],
    out: Annotated[Path, typer.Option(help="judgments (jsonl)")],
    early_stop: Annotated[bool, typer.Option(help=EARLY_STOP_HELP)] = False,
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
    run: AnnotateOptions = AnnotateOptions(),
) -> None:
    """Judge pairs against criteria; with human labels, report each criterion's and the vote's accuracy."""
    from critiq.rundir.annotation import JUDGE_FILE

    options = replace(run, early_stop=early_stop, data=data, record=JUDGE_FILE)
    _annotate_command(pairs, criteria, out, settings, options)


@app.command()
@model_options
@data_options
@run_options
def annotate(
    input: Annotated[str, typer.Argument(help=f"pairs, or an unlabeled corpus with --corpus: {DATA_HELP}")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`")],
    out: Annotated[Path, typer.Option(help="labelled pairs (jsonl), appended as they finish")],
    corpus: Annotated[bool, typer.Option("--corpus", help="INPUT is unlabeled documents: draw pairs from it")] = False,
    max_pairs: Annotated[int | None, typer.Option(min=1, help="pairs to draw from the corpus")] = None,
    length_matched: Annotated[bool, typer.Option(help="pair documents of similar length")] = True,
    text_field: Annotated[str, typer.Option(help="text field of the corpus")] = "text",
    backend: Annotated[str, typer.Option(help="http (any server/provider) | vllm-offline (local GPU batch)")] = "http",
    early_stop: Annotated[bool, typer.Option(help=EARLY_STOP_HELP)] = True,
    engine: Annotated[str, typer.Option(help="local (one process) | ray (a Ray Data job; needs --api-base)")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (engine ray)")] = None,
    ray_workers: Annotated[int | None, typer.Option(min=1, help="Ray workers (engine ray; default: CPUs − 1)")] = None,
    shards: Annotated[str | None, typer.Option(help="also write the records as Parquet shards in Hub layout")] = None,
    shard_rows: Annotated[int | None, typer.Option(min=1, help="rows per shard (default 100000)")] = None,
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
    run: AnnotateOptions = AnnotateOptions(),
) -> None:
    """Label many pairs with the workers and the final criteria (majority vote)."""
    options = replace(
        run,
        corpus=corpus,
        max_pairs=max_pairs,
        length_matched=length_matched,
        text_field=text_field,
        early_stop=early_stop,
        backend=backend,
        engine=engine,
        ray_address=ray_address,
        ray_workers=ray_workers,
        data=data,
        shards=shards,
        shard_rows=shard_rows,
    )
    _annotate_command(input, criteria, out, settings, options)
