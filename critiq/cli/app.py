"""The ``critiq`` Typer application and its root options; commands live in one module per group."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from critiq.cli.display import console
from critiq.cli.flags import FlagsInLogs

app = typer.Typer(
    name="critiq",
    help="Mine data-quality criteria from human preferences, distil a scorer, select data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log more")] = False,
) -> None:
    state["debug"] = debug
    handler = RichHandler(console=console, show_path=False)
    handler.addFilter(FlagsInLogs())  # library log lines name parameters; the command line shows its flags
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    logging.getLogger("critiq").setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("httpx", "LiteLLM", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
