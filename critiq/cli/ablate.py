"""`critiq ablate`: the flow, its ablations and two baselines on one train/test split, as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from critiq.cli.app import app
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console, progress_bar
from critiq.cli.mine import flow_options
from critiq.cli.options import model_options
from critiq.llm.session import ModelSettings
from critiq.mine.config import FlowConfig
from critiq.stats import pct

METHOD_HELP = (
    "methods to run (repeatable; default all): flow, no-reflection, no-kb, no-reflection-no-kb, all-in-one, "
    "all-in-one-mined, overall, best-kb-criterion"
)


@app.command()
@model_options
@flow_options
@data_options
def ablate(
    train: Annotated[str, typer.Argument(help=f"human-labelled pairs (or points) to mine on: {DATA_HELP}")],
    test: Annotated[str, typer.Option(help="pairs (or points) to score each method on, named as TRAIN")],
    out: Annotated[Path, typer.Option(help="output directory: ablation.md, ablation.json, one run per flow method")],
    method: Annotated[list[str] | None, typer.Option("--method", help=METHOD_HELP)] = None,
    init_criteria: Annotated[Path | None, typer.Option(help="your own initial criteria (json/jsonl/yaml)")] = None,
    max_chars: Annotated[int | None, typer.Option(min=1, help="truncate longer texts")] = None,
    flow: FlowConfig = FlowConfig(),
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
) -> None:
    """Run the flow, each ablation and the baselines on the same split; print and write the table.

    All methods share one request cache (--cache-dir, else OUT/cache): a cell two methods judge is asked once.
    """
    from critiq.api.ablating import ablate as ablate_step

    with progress_bar() as update:
        rows = ablate_step(
            data.source(train),
            data.source(test, sliced=False),
            out,
            methods=method,
            model=settings,
            init_criteria=init_criteria or (),
            max_chars=max_chars,
            config=flow,
            progress=update,
        )
    table = Table(
        "method",
        "accuracy",
        "95% interval",
        "decided",
        "coverage",
        "n",
        "requests",
        "prompt tok",
        "compl tok",
        title="ablation (accuracy: a tie counts as wrong; decided: over labelled examples)",
    )
    for r in rows:
        interval = "–" if r.ci_low is None else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
        name = r.method if r.passed else f"{r.method} (below threshold)"
        table.add_row(
            name,
            pct(r.accuracy),
            interval,
            pct(r.decided_accuracy),
            pct(r.coverage),
            str(r.n),
            str(r.requests),
            str(r.prompt_tokens),
            str(r.completion_tokens),
        )
    console.print(table)
    console.print(f"wrote {out / 'ablation.md'} and {out / 'ablation.json'}")
