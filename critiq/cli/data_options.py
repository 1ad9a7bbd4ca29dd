"""Options shared by every command that reads data, added by :func:`data_options`; how to name a dataset."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from critiq.data.sources import Source, resolve

DATA_HELP = (
    "a .jsonl/.json/.csv/.parquet file, a glob of shards, a save_to_disk or Hub-layout folder, "
    "hf://ORG/NAME (or hf://ORG/NAME@REVISION:SPLIT), or an fsspec URI (s3://, gs://, file://, ...)"
)

_SHARED: dict[str, tuple[Any, Any]] = {
    "config": (Annotated[str | None, typer.Option(help="configuration of a Hub dataset (hf://ORG/NAME)")], None),
    "skip": (Annotated[int, typer.Option(min=0, help="pass over the first N rows of the input")], 0),
    "limit": (Annotated[int | None, typer.Option(min=1, help="read at most N rows of the input (after --skip)")], None),
}


@dataclass(frozen=True)
class DataOptions:
    """The shared data flags: ``--config``, ``--skip``, ``--limit``."""

    config: str | None = None
    skip: int = 0
    limit: int | None = None

    def source(self, name: str, *, sliced: bool = True) -> Source:
        """The input named ``name``; ``sliced=False`` for secondary inputs (``--valid``) that take no slice."""
        if not sliced:
            return resolve(name, config=self.config)
        return resolve(name, config=self.config, limit=self.limit, skip=self.skip)


def data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config``, ``--skip`` and ``--limit`` to a typer command; it receives them as ``data: DataOptions``."""
    signature = inspect.signature(command)
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values() if p.name != "data"
    ]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, (annotation, default) in _SHARED.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _SHARED}
        return command(*args, data=DataOptions(**values), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *shared])  # type: ignore[attr-defined]
    return wrapper
