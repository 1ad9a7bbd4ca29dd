"""`critiq judge` and `critiq annotate`: the workers label pairs with given criteria."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from critiq.cli.app import app
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console, criteria_table, pct, progress_bar
from critiq.cli.options import model_options
from critiq.errors import CritiqError
from critiq.llm.session import ModelSettings


@contextmanager
def _worker_client(backend: str, settings: ModelSettings) -> Iterator[Any]:
    """The workers' client: any server or provider over HTTP, or vLLM offline batch on a local GPU."""
    if backend == "vllm-offline":
        from critiq.llm.cache import RequestCache
        from critiq.llm.vllm_offline import VLLMOfflineClient

        if not settings.model:
            raise CritiqError("--backend vllm-offline needs --model (a Hugging Face model name or path)")
        cache = RequestCache(settings.cache_dir) if settings.cache_dir else None
        yield VLLMOfflineClient(settings.model, cache=cache, max_tokens=settings.worker_max_tokens)
        return
    from critiq.llm.session import open_clients

    with open_clients(settings) as clients:
        yield clients.worker


def _annotate_command(
    input_path: str,
    criteria_path: Path,
    out: Path,
    settings: ModelSettings,
    *,
    margin: int,
    swap: str,
    resume: bool,
    max_chars: int | None,
    corpus: bool,
    max_pairs: int | None,
    length_matched: bool,
    seed: int,
    language: str,
    text_field: str,
    data: DataOptions,
    backend: str = "http",
    shards: str | None = None,
    shard_rows: int | None = None,
) -> None:
    from critiq.annotate import annotate, draw_pairs
    from critiq.data.criteria import load_criteria
    from critiq.data.loaders import stream_examples
    from critiq.data.models import Point
    from critiq.llm.client import run_sync
    from critiq.mine.judge import Worker
    from critiq.prompts import Prompts

    if swap not in ("random", "both", "none"):
        raise CritiqError(f"--swap {swap!r}: use random, both or none")
    criteria = load_criteria(criteria_path)
    # a local input is checked whole before anything is written, then streamed; a remote one is checked as it streams
    first, examples = stream_examples(data.source(input_path), max_chars=max_chars, text_field=text_field)
    if corpus or (isinstance(first, Point) and corpus):
        examples = draw_pairs(examples, seed=seed, length_matched=length_matched, max_pairs=max_pairs)  # type: ignore[arg-type]
    if backend not in ("http", "vllm-offline"):
        raise CritiqError(f"--backend {backend!r}: use http or vllm-offline")
    with _worker_client(backend, settings) as client, progress_bar() as update:
        worker = Worker(client, Prompts(language), swap=swap, seed=seed)  # type: ignore[arg-type]
        summary = run_sync(
            annotate(
                examples,
                criteria,
                worker,
                out,
                margin=margin,
                resume=resume,
                progress=lambda n: update("annotate", n, max(n, max_pairs or n)),
            )
        )
    if shards:
        from critiq.data.cards import annotated_card
        from critiq.data.shards import DEFAULT_SHARD_ROWS, jsonl_to_shards

        counts = {"records": summary.written + summary.skipped, "failed": summary.failed, "ties": summary.ties}
        card = annotated_card(input_path, criteria, settings.worker_model or settings.model, counts)
        written = jsonl_to_shards(out, shards, card, shard_rows=shard_rows or DEFAULT_SHARD_ROWS)
        console.print(f"{len(written.shards)} shards ({written.rows} records) in {shards}")
    console.print(
        f"wrote {summary.written} records to {out} (skipped {summary.skipped} already done, "
        f"{summary.failed} failed, {summary.ties} ties) · requests {client.usage.requests} · "
        f"cache hits {client.usage.cache_hits}"
    )
    if summary.criteria:
        criteria_table(criteria, summary.criteria)
        assert summary.vote is not None
        console.print(
            f"majority vote accuracy {pct(summary.vote.accuracy)} "
            f"(coverage {pct(summary.vote.coverage)}, n {summary.vote.n})"
        )


@app.command()
@model_options
@data_options
def judge(
    pairs: Annotated[str, typer.Argument(help=f"pairs or points to judge: {DATA_HELP}")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`, or your own")],
    out: Annotated[Path, typer.Option(help="judgments (jsonl)")],
    margin: Annotated[int, typer.Option(min=0)] = 0,
    swap: Annotated[str, typer.Option()] = "random",
    resume: Annotated[bool, typer.Option("--resume")] = False,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    language: Annotated[str, typer.Option()] = "en",
    seed: Annotated[int, typer.Option()] = 0,
    settings: ModelSettings = None,  # type: ignore[assignment]
    data: DataOptions = DataOptions(),
) -> None:
    """Judge pairs against criteria; with human labels, report each criterion's and the vote's accuracy."""
    _annotate_command(
        pairs,
        criteria,
        out,
        settings,
        margin=margin,
        swap=swap,
        resume=resume,
        max_chars=max_chars,
        corpus=False,
        max_pairs=None,
        length_matched=False,
        seed=seed,
        language=language,
        text_field="text",
        data=data,
    )


@app.command()
@model_options
@data_options
def annotate(
    input: Annotated[str, typer.Argument(help=f"pairs, or an unlabeled corpus with --corpus: {DATA_HELP}")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`")],
    out: Annotated[Path, typer.Option(help="labelled pairs (jsonl), appended as they finish")],
    corpus: Annotated[bool, typer.Option("--corpus", help="INPUT is unlabeled documents: draw pairs from it")] = False,
    max_pairs: Annotated[int | None, typer.Option(min=1, help="pairs to draw from the corpus")] = None,
    length_matched: Annotated[bool, typer.Option(help="pair documents of similar length")] = True,
    text_field: Annotated[str, typer.Option(help="text field of the corpus")] = "text",
    margin: Annotated[int, typer.Option(min=0, help="votes one side needs beyond the other")] = 0,
    swap: Annotated[str, typer.Option()] = "random",
    backend: Annotated[str, typer.Option(help="http (any server/provider) | vllm-offline (local GPU batch)")] = "http",
    resume: Annotated[bool, typer.Option("--resume", help="skip ids already in --out")] = False,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    language: Annotated[str, typer.Option()] = "en",
    seed: Annotated[int, typer.Option()] = 0,
    shards: Annotated[str | None, typer.Option(help="also write the records as Parquet shards in Hub layout")] = None,
    shard_rows: Annotated[int | None, typer.Option(min=1, help="rows per shard (default 100000)")] = None,
    settings: ModelSettings = None,  # type: ignore[assignment]
    data: DataOptions = DataOptions(),
) -> None:
    """Label many pairs with the workers and the final criteria (majority vote)."""
    _annotate_command(
        input,
        criteria,
        out,
        settings,
        margin=margin,
        swap=swap,
        resume=resume,
        max_chars=max_chars,
        corpus=corpus,
        max_pairs=max_pairs,
        length_matched=length_matched,
        seed=seed,
        language=language,
        text_field=text_field,
        data=data,
        backend=backend,
        shards=shards,
        shard_rows=shard_rows,
    )
