"""`critiq judge` and `critiq annotate`: the workers label pairs with given criteria."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from critiq.annotate.config import BACKENDS, ENGINES, MODES, SWAPS, AnnotateConfig, flag_of
from critiq.cli.app import app
from critiq.cli.choices import choose
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

_FIELDS = AnnotateConfig.model_fields
DRY_RUN_HELP = "print the requests, tokens and price the run would take, and send nothing"


def _flag(field: str, *names: str, **options: Any) -> Any:
    """The typer option of an :class:`AnnotateConfig` field: its flag and its description as help."""
    return typer.Option(*(names or (flag_of(field),)), help=_FIELDS[field].description, **options)


def _default(field: str) -> Any:
    return _FIELDS[field].get_default(call_default_factory=True)


@dataclass
class AnnotateOptions:
    """What `judge` and `annotate` receive beyond the shared model flags: the run's :class:`AnnotateConfig` (its
    choices still as typed) and the command's own switches."""

    values: dict[str, Any] = field(default_factory=dict)  # AnnotateConfig fields as the flags gave them
    resume: bool = False
    dry_run: bool = False
    data: DataOptions = field(default_factory=DataOptions)
    record: str = "annotate.json"  # the run's record beside --out (`critiq judge` writes judge.json)

    def config(self) -> AnnotateConfig:
        """The flags as an :class:`AnnotateConfig`; a choice that is none of its values is one line naming its flag."""
        values = dict(self.values)
        for name, choices in (("swap", SWAPS), ("judge", MODES), ("backend", BACKENDS), ("engine", ENGINES)):
            if name in values:
                values[name] = choose(flag_of(name), values[name], choices)
        return AnnotateConfig(**values)


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

    config = options.config()
    # a local input is checked whole before anything is written, then streamed; a remote one is checked as it streams
    source = options.data.source(input_path)
    if options.dry_run:
        print_estimate(estimate(source, criteria_path, model=settings, out=out, config=config, resume=options.resume))
        return
    with progress_bar() as update:
        result = annotate(
            source,
            criteria_path,
            model=settings,
            out=out,
            config=config,
            resume=options.resume,
            source_name=input_path,
            record=options.record,
            progress=lambda n: update("annotate", n, max(n, config.max_pairs or n)),
        )
    _print_summary(result.summary, result.criteria, out, result.usage)
    if result.shards is not None:
        console.print(f"{len(result.shards.shards)} shards ({result.shards.rows} records) in {config.shards}")


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
    "margin": (Annotated[int, _flag("margin", min=0)], _default("margin")),
    "swap": (Annotated[str, _flag("swap")], _default("swap")),
    "judge": (Annotated[str, _flag("judge")], _default("judge")),
    "resume": (Annotated[bool, typer.Option("--resume", help="skip ids already in --out")], False),
    "max_chars": (Annotated[int | None, _flag("max_chars", min=1)], None),
    "language": (Annotated[str, _flag("language")], _default("language")),
    "seed": (Annotated[int, _flag("seed")], _default("seed")),
    "dry_run": (Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)], False),
}


def _run_options(values: dict[str, Any]) -> AnnotateOptions:
    resume, dry_run = values.pop("resume"), values.pop("dry_run")
    return AnnotateOptions(values=values, resume=resume, dry_run=dry_run)


run_options = option_group("run", _RUN_FLAGS, _run_options)
"""The flags `judge` and `annotate` share; the command receives them as ``run: AnnotateOptions``."""


@app.command()
@model_options
@data_options
@run_options
def judge(
    pairs: Annotated[str, typer.Argument(help=f"pairs or points to judge: {DATA_HELP}")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`, or your own")],
    out: Annotated[Path, typer.Option(help="judgments (jsonl)")],
    early_stop: Annotated[bool, _flag("early_stop", "--early-stop/--no-early-stop")] = False,
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
    run: AnnotateOptions = AnnotateOptions(),
) -> None:
    """Judge pairs against criteria; with human labels, report each criterion's and the vote's accuracy."""
    from critiq.rundir.annotation import JUDGE_FILE

    options = replace(run, values={**run.values, "early_stop": early_stop}, data=data, record=JUDGE_FILE)
    _annotate_command(pairs, criteria, out, settings, options)


@app.command()
@model_options
@data_options
@run_options
def annotate(
    input: Annotated[str, typer.Argument(help=f"pairs, or an unlabeled corpus with --corpus: {DATA_HELP}")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`")],
    out: Annotated[Path, typer.Option(help="labelled pairs (jsonl), appended as they finish")],
    corpus: Annotated[bool, _flag("corpus", "--corpus")] = _default("corpus"),
    max_pairs: Annotated[int | None, _flag("max_pairs", min=1)] = None,
    length_matched: Annotated[bool, _flag("length_matched", "--length-matched/--no-length-matched")] = _default(
        "length_matched"
    ),
    text_field: Annotated[str, _flag("text_field")] = _default("text_field"),
    backend: Annotated[str, _flag("backend")] = _default("backend"),
    early_stop: Annotated[bool, _flag("early_stop", "--early-stop/--no-early-stop")] = _default("early_stop"),
    engine: Annotated[str, _flag("engine")] = _default("engine"),
    ray_address: Annotated[str | None, _flag("ray_address")] = None,
    ray_workers: Annotated[int | None, _flag("ray_workers", min=1)] = None,
    shards: Annotated[str | None, _flag("shards")] = None,
    shard_rows: Annotated[int | None, _flag("shard_rows", min=1)] = None,
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
    run: AnnotateOptions = AnnotateOptions(),
) -> None:
    """Label many pairs with the workers and the final criteria (majority vote)."""
    own = {
        "corpus": corpus,
        "max_pairs": max_pairs,
        "length_matched": length_matched,
        "text_field": text_field,
        "early_stop": early_stop,
        "backend": backend,
        "engine": engine,
        "ray_address": ray_address,
        "ray_workers": ray_workers,
        "shards": shards,
        "shard_rows": shard_rows,
    }
    options = replace(run, values={**run.values, **own}, data=data)
    _annotate_command(input, criteria, out, settings, options)
