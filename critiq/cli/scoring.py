"""`critiq train-scorer`, `critiq score` and `critiq select`: distil a scorer, score a corpus, keep its best part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from critiq.cli.app import app
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console
from critiq.errors import CritiqError


@app.command("train-scorer")
@data_options
def train_scorer(
    labeled: Annotated[
        str, typer.Argument(help=f"labelled pairs (annotate output, or any {{a, b, preferred}}): {DATA_HELP}")
    ],
    out: Annotated[Path, typer.Option(help="directory for the trained scorer")],
    kind: Annotated[str, typer.Option(help="ngram | encoder | reward-model")] = "ngram",
    base_model: Annotated[str | None, typer.Option(help="encoder / reward-model: model name or path")] = None,
    valid_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="held out for the accuracy figure")] = 0.1,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    length_control: Annotated[
        bool, typer.Option("--length-control", help="fit text length as a covariate and score without it")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out")] = False,
    scorer_arg: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE passed to the scorer (a JSON value or a string), e.g. max_length=256; repeatable"),
    ] = None,
    data: DataOptions = DataOptions(),
) -> None:
    """Distil a Bradley–Terry scorer from labelled pairs; prints its held-out accuracy and how its scores follow
    text length. ``--base-model embedded`` (reward-model) fine-tunes the packaged SmolLM2-135M."""
    from critiq.api.scoring import train_scorer as train

    options: dict[str, Any] = {"model": base_model} if base_model else {}
    options.update(_scorer_args(scorer_arg or []))
    scorer = train(
        data.source(labeled),
        kind,
        out,
        valid_fraction=valid_fraction,
        seed=seed,
        length_control=length_control,
        max_chars=max_chars,
        force=force,
        **options,
    )
    assert scorer.fit_report is not None  # fitted just now
    console.print(f"{scorer.fit_report.summary()} · saved to {out}")


def _scorer_args(items: list[str]) -> dict[str, Any]:
    """``--scorer-arg KEY=VALUE`` pairs: the value as JSON (numbers, true, lists), else as the string it is."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CritiqError(f"--scorer-arg {item!r}: expected KEY=VALUE")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed


@app.command()
@data_options
def score(
    corpus: Annotated[str, typer.Argument(help=f"the corpus: {DATA_HELP}")],
    scorer: Annotated[Path, typer.Option(help="a trained scorer directory")],
    out: Annotated[str, typer.Option(help="a .parquet file, or a folder / URI for Parquet shards in Hub layout")],
    text_field: Annotated[str, typer.Option()] = "text",
    engine: Annotated[str, typer.Option(help="datasets | ray")] = "datasets",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (engine ray)")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 1024,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    shard_rows: Annotated[
        int | None, typer.Option(min=1, help="rows per shard of a folder --out (default 100000)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out")] = False,
    data: DataOptions = DataOptions(),
) -> None:
    """Score every document of a corpus (streaming) into a Parquet file, or shards in Hub layout with a card."""
    from critiq.api.inputs import choose
    from critiq.api.scoring import ENGINES
    from critiq.api.scoring import score as score_step

    result = score_step(
        data.source(corpus),
        scorer,
        out,
        text_field=text_field,
        engine=choose("engine", engine, ENGINES),
        batch_size=batch_size,
        max_chars=max_chars,
        ray_address=ray_address,
        shard_rows=shard_rows,
        force=force,
    )
    console.print(result.summary.model_dump_json())


@app.command("select")
def select_command(
    scored: Annotated[str, typer.Argument(help="critiq score's output: a .parquet file or a folder of shards")],
    out: Annotated[Path, typer.Option(help="selected records (.jsonl)")],
    top_k: Annotated[int | None, typer.Option(help="keep this many documents")] = None,
    fraction: Annotated[float | None, typer.Option(help="keep this fraction, in (0, 1]")] = None,
    tokens: Annotated[int | None, typer.Option(help="keep documents until this many tokens")] = None,
    temperature: Annotated[float, typer.Option(help="0 = top-k; > 0 samples ∝ exp(score/τ) (Gumbel top-k)")] = 0.0,
    seed: Annotated[int | None, typer.Option()] = None,
    text_field: Annotated[str, typer.Option()] = "text",
    token_field: Annotated[str | None, typer.Option(help="field with token counts (default: len(text) // 4)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out")] = False,
) -> None:
    """Select the best part of a scored corpus: top-k, or Gumbel top-k sampling with a temperature."""
    from critiq.api.scoring import select

    result = select(
        scored,
        top_k=top_k,
        fraction=fraction,
        tokens=tokens,
        temperature=temperature,
        seed=seed,
        out=out,
        text_field=text_field,
        token_field=token_field,
        force=force,
    )
    console.print(result.summary.model_dump_json())
