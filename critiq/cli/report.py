"""`critiq report`: the HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from critiq.cli.app import app
from critiq.cli.display import console


@app.command()
def report(
    run_dir: Annotated[
        Path, typer.Argument(help="a run directory (docs/run_directory.md), a demo's, or a `critiq mine` --out")
    ],
) -> None:
    """Render RUN_DIR/report.html: labels, criteria, votes, ablation, annotation, scorer, scores, selection."""
    from critiq.report import render_html

    page = render_html(run_dir)
    console.print(f"[bold green]report:[/] {page.resolve()}")
