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
from critiq.errors import CritiqError
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
    from critiq.data import load_examples
    from critiq.data.criteria import load_criteria
    from critiq.llm.client import run_sync
    from critiq.llm.session import open_clients
    from critiq.mine.ablation import METHODS, Ablation

    unknown = [m for m in method or [] if m not in METHODS]
    if unknown:
        raise CritiqError(f"--method {unknown[0]!r}: choose from {', '.join(METHODS)}")
    train_examples = load_examples(data.source(train), max_chars=max_chars, require_labels=True)
    test_examples = load_examples(data.source(test, sliced=False), max_chars=max_chars, require_labels=True)
    initial = load_criteria(init_criteria) if init_criteria else []
    if settings.cache_dir is None:  # --no-cache: the methods still share their answers, in the output directory
        settings = settings.model_copy(update={"cache_dir": out / "cache"})
    with open_clients(settings) as clients, progress_bar() as update:
        ablation = Ablation(
            flow, manager=clients.manager, worker=clients.worker, init_criteria=initial, progress=update
        )
        rows = run_sync(ablation.run(train_examples, test_examples, out, methods=method or METHODS))
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
