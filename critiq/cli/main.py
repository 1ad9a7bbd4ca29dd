"""The ``critiq`` command line: the entry point, which turns errors into one line and an exit status.

Commands live in one module per group (``critiq/cli/<group>.py``); importing a module registers its commands.
"""

from __future__ import annotations

import importlib
import sys

from rich.markup import escape

from critiq.cli.app import app, state
from critiq.cli.display import console
from critiq.cli.flags import as_flags
from critiq.errors import BudgetExceeded, CritiqError

# importing a group's module registers its commands; `critiq --help` lists them in this order
COMMAND_GROUPS = ("label", "mine", "ablate", "annotate", "scoring", "report", "demo", "serve", "kb")
for _group in COMMAND_GROUPS:
    importlib.import_module(f"critiq.cli.{_group}")


def main() -> None:
    """Entry point: one clear line and a non-zero exit for user errors; tracebacks only with --debug."""
    try:
        app()  # click handles usage errors itself (exit 2)
    except BudgetExceeded as error:
        console.print(f"[yellow]stopped:[/] {escape(as_flags(str(error)))}", soft_wrap=True)
        sys.exit(3)
    except CritiqError as error:
        if state["debug"]:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(as_flags(str(error)))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; finished work is saved — rerun with --resume")
        sys.exit(130)
    except Exception as error:  # a bug: one line unless --debug
        if state["debug"]:
            raise
        console.print(
            f"[red]error:[/] {type(error).__name__}: {escape(str(error))} (rerun with --debug for the traceback)",
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
