"""`critiq demo`: the whole pipeline on bundled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from critiq.cli.app import app
from critiq.cli.display import console, progress_bar
from critiq.cli.options import model_options
from critiq.llm.session import ModelSettings


@app.command()
@model_options
def demo(
    out: Annotated[Path, typer.Option(help="run directory")] = Path("critiq-demo"),
    train_pairs: Annotated[int, typer.Option(min=2, help="bundled human pairs to mine from")] = 12,
    n_criteria: Annotated[int, typer.Option(min=1)] = 3,
    iterations: Annotated[int, typer.Option(min=0)] = 1,
    annotate_pairs: Annotated[int, typer.Option(min=4, help="pairs drawn from the bundled corpus")] = 24,
    settings: ModelSettings = ModelSettings(),
) -> None:
    """End to end on bundled data: mine → annotate → train scorer → score → select → HTML report."""
    from critiq.demo import DemoSettings, run_demo

    demo_settings = DemoSettings(
        train_pairs=train_pairs, n_criteria=n_criteria, iterations=iterations, annotate_pairs=annotate_pairs
    )
    with progress_bar() as update:
        run = run_demo(out, settings, demo_settings, progress=update)
    usage, page = run.usage, run.page
    console.print(
        f"requests {usage.requests} · cache hits {usage.cache_hits} · tokens "
        f"{usage.prompt_tokens}+{usage.completion_tokens}"
    )
    console.print(f"[bold green]report:[/] {page.resolve()}")
