"""The ``critiq`` Typer application and its root options; commands live in one module per group."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich.logging import RichHandler
from typer.core import TyperGroup

from critiq.cli.display import console
from critiq.cli.flags import FlagsInLogs, as_flags
from critiq.errors import CritiqError


class _FlagsInErrors(TyperGroup):
    """The root command: a library error raised by a command names its flags (``--top-k``), not its parameters."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CritiqError as error:
            if error.args and isinstance(error.args[0], str):
                error.args = (as_flags(error.args[0]), *error.args[1:])
            raise


app = typer.Typer(
    name="critiq",
    cls=_FlagsInErrors,
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
