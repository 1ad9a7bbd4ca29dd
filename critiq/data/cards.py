"""Dataset cards (README.md) for the folders critiq writes: what it wrote, from what, with which scorer or criteria."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from critiq.data.models import Criterion
    from critiq.data.sources import Source
    from critiq.scorer.base import Scorer

MARKER = "tags:\n- critiq\n"  # in the YAML header: how critiq recognises a folder it wrote


class DatasetCard(BaseModel):
    """What goes into a folder's README.md: a title, one paragraph, the command, and a table of details."""

    title: str
    summary: str
    command: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


def render_card(card: DatasetCard, split: str, shards: Sequence[tuple[str, int]], schema: pa.Schema | None) -> str:
    """The README.md text: the YAML header (configs, the ``critiq`` tag), the card, the shards and the columns."""
    from critiq import __version__

    template = Template(resources.files("critiq.data").joinpath("dataset_card.md").read_text(encoding="utf-8"))
    details = {"rows": sum(rows for _, rows in shards), "shards": len(shards), **card.details}
    return template.substitute(
        split=split,
        title=card.title,
        summary=card.summary,
        version=__version__,
        command=card.command or "critiq",
        details="\n".join(f"| {key} | {_cell(value)} |" for key, value in details.items()),
        files="\n".join(f"- `data/{name}`: {rows} rows" for name, rows in shards) or "- none",
        columns="\n".join(f"- `{field.name}`: {field.type}" for field in schema or []) or "- none",
    )


def scored_card(
    source: Source,
    scorer: Scorer,
    scorer_dir: str | os.PathLike[str] | None,
    text_field: str,
    max_chars: int | None,
    engine: str,
) -> DatasetCard:
    """The card of a scored corpus: the source and its slice, the scorer (saved in ``scorer_dir``) and its training."""
    model = scorer
    where = f" at `{os.fspath(scorer_dir)}`" if scorer_dir is not None else ""
    details: dict[str, Any] = {"source": f"`{source.name}`", "scorer": f"{model.kind}{where}", "engine": engine}
    if model.fit_report is not None:
        details["scorer training"] = model.fit_report.summary()
    if source.skip or source.limit is not None:
        details["slice"] = f"skip {source.skip}, limit {source.limit if source.limit is not None else 'none'}"
    details["text field"] = f"`{text_field}`" + (f" (first {max_chars} characters scored)" if max_chars else "")
    return DatasetCard(
        title="Scored corpus",
        summary=f"Every record of `{source.name}` with a `score` column (float32): the {model.kind} "
        "Bradley–Terry scorer's quality score, higher is better.",
        command="critiq score",
        details=details,
    )


def annotated_card(
    source: str, criteria: Sequence[Criterion], model: str | None, counts: dict[str, int]
) -> DatasetCard:
    """The card of annotated pairs: the input, the criteria and the worker model, the run's counts."""
    return DatasetCard(
        title="Pairs labelled by critiq",
        summary=f"Pairs from `{source}` labelled by the majority vote of LLM workers judging them on "
        f"{len(criteria)} criteria; `votes` holds each criterion's verdict.",
        command="critiq annotate",
        details={
            "criteria": ", ".join(f"`{c.name}`" for c in criteria),
            "worker model": f"`{model}`" if model else "the embedded model",
            **counts,
        },
    )


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
