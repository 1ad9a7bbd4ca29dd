"""`critiq mine`: CritiQ Flow on human-labelled pairs; ``flow_options`` gives every FlowConfig field a flag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from critiq.cli.app import app
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console, criteria_table, progress_bar
from critiq.cli.groups import option_group
from critiq.cli.options import model_options
from critiq.errors import CritiqError
from critiq.llm.session import ModelSettings
from critiq.mine.config import FlowConfig, config_error, flag_of
from critiq.stats import pct

NOTHING_PASSED = 4  # exit status when no criterion reached the threshold (1, 2, 3 and 130 mean other things)

_FIELDS = FlowConfig.model_fields


def _help(field: str, extra: str = "") -> str:
    return (_FIELDS[field].description or field) + extra


def _opt(field: str, **options: Any) -> Any:
    return typer.Option(flag_of(field), help=options.pop("help", None) or _help(field), **options)


def _default(field: str) -> Any:
    return _FIELDS[field].get_default(call_default_factory=True)


# parameter name -> (annotation, default); every FlowConfig field is set by one of them
_FLOW: dict[str, tuple[Any, Any]] = {
    "n_criteria": (Annotated[int, _opt("n_criteria", min=1)], _default("n_criteria")),
    "iterations": (Annotated[int, _opt("iterations", min=0)], _default("iterations")),
    "thresholds": (
        Annotated[
            str,
            typer.Option(
                "--thresholds",
                help="LO,HI: at or below LO a criterion is banned and replaced; at or above HI it is good",
            ),
        ],
        f"{_default('low')},{_default('high')}",
    ),
    "final_threshold": (Annotated[float | None, _opt("final_threshold")], None),
    "show_below": (Annotated[int, _opt("show_below", min=0)], _default("show_below")),
    "swap": (Annotated[str, _opt("swap")], _default("swap")),
    "judge": (Annotated[str, _opt("judge")], _default("judge")),
    "no_reflection": (
        Annotated[
            bool,
            typer.Option(
                "--no-reflection",
                help="evaluate once and keep the best: no critique, rewrite or replacement (the paper's ablation)",
            ),
        ],
        False,
    ),
    "margin": (Annotated[int, _opt("margin", min=0)], _default("margin")),
    "max_critiques": (Annotated[int | None, _opt("max_critiques", min=1)], None),
    "min_success": (Annotated[float, _opt("min_success")], _default("min_success")),
    "no_kb": (Annotated[bool, typer.Option("--no-kb", help="do not retrieve from the knowledge base")], False),
    "kb": (Annotated[Path | None, _opt("kb_path")], None),
    "kb_candidates": (Annotated[int, _opt("kb_candidates", min=0)], _default("kb_candidates")),
    "kb_keep": (Annotated[int | None, _opt("kb_keep", min=0)], None),
    "task": (Annotated[str, _opt("task")], _default("task")),
    "domain": (Annotated[list[str] | None, _opt("domains", help=_help("domains", " (repeatable)"))], None),
    "language": (Annotated[str, _opt("language")], _default("language")),
    "prompts": (Annotated[Path | None, _opt("prompts_dir")], None),
    "manager_temperature": (Annotated[float, _opt("manager_temperature")], _default("manager_temperature")),
    "manager_context": (Annotated[int | None, _opt("manager_context")], None),
    "seed": (Annotated[int, _opt("seed")], _default("seed")),
}


def build_config(values: dict[str, Any]) -> FlowConfig:
    """The flow flags as a :class:`FlowConfig`; a bad value is one error line naming its flag."""
    thresholds = values.pop("thresholds")
    try:
        low, high = (float(x) for x in thresholds.split(","))
    except ValueError:
        raise CritiqError(f"--thresholds {thresholds!r}: expected LO,HI such as 0.5,0.75") from None
    kb, prompts, domains = values.pop("kb"), values.pop("prompts"), values.pop("domain")
    fields = {
        **values,
        "low": low,
        "high": high,
        "use_kb": not values.pop("no_kb"),
        "reflection": not values.pop("no_reflection"),
        "kb_path": str(kb) if kb else None,
        "prompts_dir": str(prompts) if prompts else None,
        "domains": list(domains or []),
    }
    try:
        return FlowConfig(**fields)
    except ValidationError as error:
        message = config_error(error)
        if message.startswith("--thresholds"):  # name the value as typed, not the half of it
            message = f"--thresholds {thresholds!r}: {message.split(': ', 1)[1]}"
        raise CritiqError(message) from None


flow_options = option_group("flow", _FLOW, build_config)
"""Add a flag for every FlowConfig field to a typer command; it receives them as ``flow: FlowConfig``."""


@app.command()
@model_options
@flow_options
@data_options
def mine(
    pairs: Annotated[str, typer.Argument(help=f"human-labelled pairs (or points): {DATA_HELP}")],
    out: Annotated[Path, typer.Option(help="run directory")],
    valid: Annotated[str | None, typer.Option(help="validation pairs (named as the input)")] = None,
    init_criteria: Annotated[Path | None, typer.Option(help="your own initial criteria (json/jsonl/yaml)")] = None,
    max_chars: Annotated[int | None, typer.Option(min=1, help="truncate longer texts")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print requests, tokens and price; send nothing")] = False,
    flow: FlowConfig = FlowConfig(),
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
) -> None:
    """Mine quality criteria from human-labelled pairs (CritiQ Flow).

    Exits with status 4 when no criterion reached the threshold (the best below it are in report.md).
    """
    from critiq.api.mining import mine as mine_step
    from critiq.data import load_examples
    from critiq.data.criteria import load_criteria

    train = load_examples(data.source(pairs), max_chars=max_chars, require_labels=True)
    valid_source = data.source(valid, sliced=False) if valid else None
    valid_examples = load_examples(valid_source, max_chars=max_chars, require_labels=True) if valid_source else None
    initial = load_criteria(init_criteria) if init_criteria else []
    if dry_run:
        from critiq.cli.annotate import print_estimate
        from critiq.llm.session import role_config
        from critiq.mine.estimate import estimate_mine

        estimate = estimate_mine(
            train,
            valid_examples,
            flow,
            role_config(settings, "worker"),
            role_config(settings, "manager"),
            initial=initial,
        )
        print_estimate(estimate)
        return
    with progress_bar() as update:
        result = mine_step(
            train,
            model=settings,
            run_dir=out,
            valid=valid_examples,
            init_criteria=initial,
            resume=resume,
            config=flow,
            progress=update,
        )
    criteria_table(result.voters)
    retrieval = result.retrieval
    if retrieval is not None:
        console.print(
            f"knowledge base: {len(retrieval.candidates)} of {retrieval.knowledge_base_size} "
            f"criteria judged ({retrieval.requests} requests), kept {len(retrieval.kept)}"
        )
    console.print(
        f"majority vote accuracy {pct(result.vote.accuracy)} (ties wrong), decided "
        f"{pct(result.vote.decided_accuracy)}, coverage {pct(result.vote.coverage)} · "
        f"requests {result.usage.requests} · "
        f"cache hits {result.usage.cache_hits} · report {out / 'report.md'}"
    )
    if not result.passed:
        console.print(
            f"[yellow]no criterion reached decided accuracy {pct(result.threshold)}[/]: the table shows the best "
            f"{len(result.below_threshold)} below it; criteria.json holds no final criteria (exit status "
            f"{NOTHING_PASSED})",
            soft_wrap=True,
        )
        raise typer.Exit(NOTHING_PASSED)
