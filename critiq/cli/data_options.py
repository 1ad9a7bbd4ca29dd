"""Options shared by every command that reads data, added by :func:`data_options`; how to name a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from critiq.cli.groups import option_group
from critiq.data.sources import MAX_ROW_BYTES, Source, resolve

DATA_HELP = (
    "a .jsonl/.json/.csv/.parquet file, a glob of shards, a save_to_disk or Hub-layout folder, "
    "hf://ORG/NAME (or hf://ORG/NAME@REVISION:SPLIT), or an fsspec URI (s3://, gs://, file://, ...)"
)

_SHARED: dict[str, tuple[Any, Any]] = {
    "config": (Annotated[str | None, typer.Option(help="configuration of a Hub dataset (hf://ORG/NAME)")], None),
    "skip": (Annotated[int, typer.Option(min=0, help="pass over the first N rows of the input")], 0),
    "limit": (Annotated[int | None, typer.Option(min=1, help="read at most N rows of the input (after --skip)")], None),
    "max_row_bytes": (
        Annotated[int | None, typer.Option(min=1, help=f"cap on one row of a text file (default {MAX_ROW_BYTES})")],
        None,
    ),
}


@dataclass(frozen=True)
class DataOptions:
    """The shared data flags: ``--config``, ``--skip``, ``--limit``, ``--max-row-bytes``."""

    config: str | None = None
    skip: int = 0
    limit: int | None = None
    max_row_bytes: int | None = None

    def source(self, name: str, *, sliced: bool = True) -> Source:
        """The input named ``name``; ``sliced=False`` for secondary inputs (``--valid``) that take no slice."""
        if not sliced:
            return resolve(name, config=self.config, max_row_bytes=self.max_row_bytes)
        return resolve(name, config=self.config, limit=self.limit, skip=self.skip, max_row_bytes=self.max_row_bytes)


data_options = option_group("data", _SHARED, lambda values: DataOptions(**values))
"""Add ``--config``, ``--skip``, ``--limit`` and ``--max-row-bytes`` to a typer command; it receives them as
``data: DataOptions``."""
