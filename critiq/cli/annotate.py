"""`critiq judge` and `critiq annotate`: the workers label pairs with given criteria."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from critiq.cli.app import app
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console, criteria_table, progress_bar
from critiq.cli.groups import Flags, option_group
from critiq.cli.options import model_options
from critiq.llm.session import ModelSettings
from critiq.stats import interval_text, pct

if TYPE_CHECKING:
    from critiq.annotate import AnnotationSummary
    from critiq.data.models import Criterion
    from critiq.judge.cost import RunEstimate
    from critiq.llm.usage import Usage

EARLY_STOP_HELP = "ask criteria most accurate first and stop once the vote cannot change (same labels)"
DRY_RUN_HELP = "print the requests, tokens and price the run would take, and send nothing"
JUDGE_HELP = (
    "per-criterion (one request per criterion) | all-in-one (one request answering every criterion) | "
    "overall (the criterion-free baseline: which text is better overall; --criteria is not read)"
)


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
    from critiq.api.annotating import annotate, estimate

    run: dict[str, Any] = {
        "out": out,
        "corpus": options.corpus,
        "max_pairs": options.max_pairs,
        "length_matched": options.length_matched,
        "text_field": options.text_field,
        "max_chars": options.max_chars,
        "margin": options.margin,
        "swap": options.swap,
        "judge": options.judge,
        "early_stop": options.early_stop,
        "resume": options.resume,
        "seed": options.seed,
        "language": options.language,
        "backend": options.backend,
        "engine": options.engine,
    }
    # a local input is checked whole before anything is written, then streamed; a remote one is checked as it streams
    source = options.data.source(input_path)
    if options.dry_run:
        print_estimate(estimate(source, criteria_path, model=settings, **run))
        return
    with progress_bar() as update:
        result = annotate(
            source,
            criteria_path,
            model=settings,
            **run,
            ray_address=options.ray_address,
            ray_workers=options.ray_workers,
            shards=options.shards,
            shard_rows=options.shard_rows,
            source_name=input_path,
            record=options.record,
            progress=lambda n: update("annotate", n, max(n, options.max_pairs or n)),
        )
    _print_summary(result.summary, result.criteria, out, result.usage)
    if result.shards is not None:
        console.print(f"{len(result.shards.shards)} shards ({result.shards.rows} records) in {options.shards}")


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
