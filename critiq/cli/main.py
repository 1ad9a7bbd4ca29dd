"""The ``critiq`` command line."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from critiq.cli.options import console, model_options, progress_bar
from critiq.errors import BudgetExceeded, CritiqError
from critiq.llm.session import ModelSettings

app = typer.Typer(
    name="critiq",
    help="Mine data-quality criteria from human preferences, distil a scorer, select data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
serve_app = typer.Typer(name="serve", help="Start a model server.", no_args_is_help=True)
app.add_typer(serve_app)

_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log more")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )
    logging.getLogger("critiq").setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("httpx", "LiteLLM", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------------- serve
@serve_app.command("local")
def serve_local(
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = None,
) -> None:
    """Serve the embedded SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server until Ctrl-C."""
    from critiq.llm.local import LOCAL_MODEL, LocalServer

    try:
        with LocalServer(port) as server:
            console.print(
                f"serving {LOCAL_MODEL} at [bold]{server.api_base}[/] — use --model {LOCAL_MODEL} "
                f"--api-base {server.api_base} --schema-mode json_object; Ctrl-C stops"
            )
            while server.process is not None and server.process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopped")


@serve_app.command("vllm")
def serve_vllm(model: str, port: Annotated[int, typer.Option()] = 8000) -> None:
    """Launch `vllm serve MODEL` (needs vllm, i.e. a GPU machine)."""
    from critiq.llm.local import serve_vllm as launch

    process = launch(model, port=port)
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()


# ---------------------------------------------------------------------------------------------------- mine
@app.command()
@model_options
def mine(
    pairs: Annotated[Path, typer.Argument(help="human-labelled pairs (or points): jsonl, json, csv, parquet")],
    out: Annotated[Path, typer.Option(help="run directory")],
    n_criteria: Annotated[int, typer.Option(min=1, help="criteria in play")] = 8,
    iterations: Annotated[int, typer.Option(min=0)] = 3,
    valid: Annotated[Path | None, typer.Option(help="validation pairs")] = None,
    init_criteria: Annotated[Path | None, typer.Option(help="your own initial criteria (json/jsonl/yaml)")] = None,
    no_kb: Annotated[bool, typer.Option("--no-kb", help="do not retrieve from the knowledge base")] = False,
    kb: Annotated[Path | None, typer.Option(help="your knowledge-base file or folder, merged over the bundled")] = None,
    kb_candidates: Annotated[int, typer.Option(min=0, help="KB criteria judged during retrieval")] = 24,
    thresholds: Annotated[str, typer.Option(help="LO,HI accuracy thresholds")] = "0.5,0.75",
    swap: Annotated[str, typer.Option(help="random | both | none")] = "random",
    task: Annotated[str, typer.Option(help="one line on what the data is")] = "training data",
    language: Annotated[str, typer.Option(help="prompt language: en | zh")] = "en",
    prompts: Annotated[Path | None, typer.Option(help="folder of your prompt templates")] = None,
    max_chars: Annotated[int | None, typer.Option(min=1, help="truncate longer texts")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    settings: ModelSettings = None,  # type: ignore[assignment]
) -> None:
    """Mine quality criteria from human-labelled pairs (CritiQ Flow)."""
    from critiq.data import load_examples
    from critiq.data.criteria import load_criteria
    from critiq.llm.session import open_clients
    from critiq.mine import CritiQFlow, FlowConfig

    low, high = _thresholds(thresholds)
    if swap not in ("random", "both", "none"):
        raise CritiqError(f"--swap {swap!r}: use random, both or none")
    train = load_examples(pairs, max_chars=max_chars, require_labels=True)
    valid_examples = load_examples(valid, max_chars=max_chars, require_labels=True) if valid else None
    initial = load_criteria(init_criteria) if init_criteria else []
    config = FlowConfig(
        n_criteria=n_criteria,
        iterations=iterations,
        low=low,
        high=high,
        swap=swap,  # type: ignore[arg-type]
        use_kb=not no_kb,
        kb_path=str(kb) if kb else None,
        kb_candidates=kb_candidates,
        task=task,
        language=language,
        prompts_dir=str(prompts) if prompts else None,
        seed=seed,
    )
    with open_clients(settings) as clients, progress_bar() as update:
        flow = CritiQFlow(
            config, manager=clients.manager, worker=clients.worker, init_criteria=initial, progress=update
        )
        result = flow.fit(train, valid_examples, run_dir=out, resume=resume)
    _criteria_table(result.criteria)
    retrieval = result.retrieval
    if retrieval:
        console.print(
            f"knowledge base: {len(retrieval.get('candidates', []))} of {retrieval.get('knowledge_base_size')} "
            f"criteria judged ({retrieval.get('requests')} requests), kept {len(retrieval.get('kept', []))}"
        )
    console.print(
        f"majority vote accuracy {_pct(result.vote.accuracy)} · requests {result.usage.requests} · "
        f"cache hits {result.usage.cache_hits} · report {out / 'report.md'}"
    )


def _thresholds(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise CritiqError(f"--thresholds {text!r}: expected LO,HI such as 0.5,0.75") from None
    if not 0 <= low < high <= 1:
        raise CritiqError(f"--thresholds {text!r}: need 0 <= LO < HI <= 1")
    return low, high


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _criteria_table(criteria: list, stats: dict | None = None) -> None:
    table = Table("criterion", "accuracy", "coverage", "n", "description", title="criteria")
    for c in criteria:
        s = (stats or {}).get(c.name) or c.stats
        table.add_row(
            c.name,
            _pct(s.accuracy if s else None),
            _pct(s.coverage if s else None),
            str(s.n if s else ""),
            c.description[:90],
        )
    console.print(table)


# ---------------------------------------------------------------------------------------------------- judge / annotate
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
    input_path: Path,
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
    backend: str = "http",
) -> None:
    from critiq.annotate import annotate, draw_pairs
    from critiq.data.criteria import load_criteria
    from critiq.data.loaders import iter_examples, load_examples, scan_examples
    from critiq.data.models import Point
    from critiq.llm.client import run_sync
    from critiq.mine.judge import Worker
    from critiq.prompts import Prompts

    if swap not in ("random", "both", "none"):
        raise CritiqError(f"--swap {swap!r}: use random, both or none")
    criteria = load_criteria(criteria_path)
    if input_path.suffix.lower() == ".jsonl":
        # check every row before anything is written; then stream (the scan keeps nothing in memory)
        first = scan_examples(input_path, max_chars=max_chars, text_field=text_field).first
        examples = iter_examples(input_path, max_chars=max_chars, text_field=text_field, warn=False)
    else:
        loaded = load_examples(input_path, max_chars=max_chars)
        first, examples = loaded[0], iter(loaded)
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
    console.print(
        f"wrote {summary.written} records to {out} (skipped {summary.skipped} already done, "
        f"{summary.failed} failed, {summary.ties} ties) · requests {client.usage.requests} · "
        f"cache hits {client.usage.cache_hits}"
    )
    if summary.criteria:
        _criteria_table(criteria, summary.criteria)
        assert summary.vote is not None
        console.print(
            f"majority vote accuracy {_pct(summary.vote.accuracy)} "
            f"(coverage {_pct(summary.vote.coverage)}, n {summary.vote.n})"
        )


@app.command()
@model_options
def judge(
    pairs: Annotated[Path, typer.Argument(help="pairs or points to judge")],
    criteria: Annotated[Path, typer.Option(help="criteria.json from `critiq mine`, or your own")],
    out: Annotated[Path, typer.Option(help="judgments (jsonl)")],
    margin: Annotated[int, typer.Option(min=0)] = 0,
    swap: Annotated[str, typer.Option()] = "random",
    resume: Annotated[bool, typer.Option("--resume")] = False,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    language: Annotated[str, typer.Option()] = "en",
    seed: Annotated[int, typer.Option()] = 0,
    settings: ModelSettings = None,  # type: ignore[assignment]
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
    )


@app.command()
@model_options
def annotate(
    input: Annotated[Path, typer.Argument(help="pairs, or an unlabeled corpus with --corpus")],
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
    settings: ModelSettings = None,  # type: ignore[assignment]
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
        backend=backend,
    )


# ---------------------------------------------------------------------------------------------------- scorer
@app.command("train-scorer")
def train_scorer(
    labeled: Annotated[Path, typer.Argument(help="labelled pairs (annotate output, or any {a, b, preferred} file)")],
    out: Annotated[Path, typer.Option(help="directory for the trained scorer")],
    kind: Annotated[str, typer.Option(help="ngram | encoder | reward-model")] = "ngram",
    base_model: Annotated[str | None, typer.Option(help="encoder / reward-model: model name or path")] = None,
    valid_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="held out for the accuracy figure")] = 0.1,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Distil a Bradley–Terry scorer from labelled pairs; prints its held-out pairwise accuracy."""
    from critiq.data import load_pairs
    from critiq.scorer import make_scorer

    pairs = [p for p in load_pairs(labeled, max_chars=max_chars) if p.preferred is not None]
    if not pairs:
        raise CritiqError(f"{labeled}: no pair has a label (preferred is null everywhere)")
    options = {"model": base_model} if base_model else {}
    scorer = make_scorer(kind, **options)
    report = scorer.fit(pairs, valid_fraction=valid_fraction, seed=seed)
    scorer.save(out)
    console.print(f"{report.summary()} · saved to {out}")


@app.command()
def score(
    corpus: Annotated[Path, typer.Argument(help="jsonl, json, parquet or a saved HF dataset directory")],
    scorer: Annotated[Path, typer.Option(help="a trained scorer directory")],
    out: Annotated[Path, typer.Option(help="scored corpus (.parquet)")],
    text_field: Annotated[str, typer.Option()] = "text",
    engine: Annotated[str, typer.Option(help="datasets | ray")] = "datasets",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (engine ray)")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 1024,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Score every document of a corpus (streaming) and write a Parquet file with a `score` column."""
    from critiq.score import score_corpus

    if engine not in ("datasets", "ray"):
        raise CritiqError(f"--engine {engine!r}: use datasets or ray")
    summary = score_corpus(
        corpus,
        scorer,
        out,
        text_field=text_field,
        engine=engine,  # type: ignore[arg-type]
        batch_size=batch_size,
        max_chars=max_chars,
        ray_address=ray_address,
    )
    console.print(summary.model_dump_json())


@app.command("select")
def select_command(
    scored: Annotated[Path, typer.Argument(help="a scored .parquet file")],
    out: Annotated[Path, typer.Option(help="selected records (.jsonl)")],
    top_k: Annotated[int | None, typer.Option(help="keep this many documents")] = None,
    fraction: Annotated[float | None, typer.Option(help="keep this fraction, in (0, 1]")] = None,
    tokens: Annotated[int | None, typer.Option(help="keep documents until this many tokens")] = None,
    temperature: Annotated[float, typer.Option(help="0 = top-k; > 0 samples ∝ exp(score/τ) (Gumbel top-k)")] = 0.0,
    seed: Annotated[int | None, typer.Option()] = None,
    text_field: Annotated[str, typer.Option()] = "text",
    token_field: Annotated[str | None, typer.Option(help="field with token counts (default: len(text) // 4)")] = None,
) -> None:
    """Select the best part of a scored corpus: top-k, or Gumbel top-k sampling with a temperature."""
    from critiq.score import select_file

    summary = select_file(
        scored,
        out,
        top_k=top_k,
        fraction=fraction,
        tokens=tokens,
        temperature=temperature,
        seed=seed,
        text_field=text_field,
        token_field=token_field,
    )
    console.print(summary.model_dump_json())


# ---------------------------------------------------------------------------------------------------- report
@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a demo/pipeline run directory or a `critiq mine` --out")],
) -> None:
    """Render RUN_DIR/report.html: criteria, iterations, votes, usage, scorer accuracy, scores, selection."""
    from critiq.report import render_html

    page = render_html(run_dir)
    console.print(f"[bold green]report:[/] {page.resolve()}")


# ---------------------------------------------------------------------------------------------------- demo
@app.command()
@model_options
def demo(
    out: Annotated[Path, typer.Option(help="run directory")] = Path("critiq-demo"),
    train_pairs: Annotated[int, typer.Option(min=2, help="bundled human pairs to mine from")] = 12,
    n_criteria: Annotated[int, typer.Option(min=1)] = 3,
    iterations: Annotated[int, typer.Option(min=0)] = 1,
    annotate_pairs: Annotated[int, typer.Option(min=4, help="pairs drawn from the bundled corpus")] = 24,
    settings: ModelSettings = None,  # type: ignore[assignment]
) -> None:
    """End to end on bundled data: mine → annotate → train scorer → score → select → HTML report."""
    from critiq.demo import DemoSettings, run_demo
    from critiq.llm.session import open_clients

    demo_settings = DemoSettings(
        train_pairs=train_pairs, n_criteria=n_criteria, iterations=iterations, annotate_pairs=annotate_pairs
    )
    with open_clients(settings) as clients, progress_bar() as update:
        page = run_demo(out, clients, demo_settings, progress=update)
        usage = clients.usage
    console.print(
        f"requests {usage.requests} · cache hits {usage.cache_hits} · tokens "
        f"{usage.prompt_tokens}+{usage.completion_tokens}"
    )
    console.print(f"[bold green]report:[/] {page.resolve()}")


def _mount_optional() -> None:
    from critiq.cli.kb import app as kb_app

    app.add_typer(kb_app, name="kb")


_mount_optional()


def main() -> None:
    """Entry point: one clear line and a non-zero exit for user errors; tracebacks only with --debug."""
    try:
        app()  # click handles usage errors itself (exit 2)
    except BudgetExceeded as error:
        console.print(f"[yellow]stopped:[/] {escape(str(error))}", soft_wrap=True)
        sys.exit(3)
    except CritiqError as error:
        if _state["debug"]:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; finished work is saved — rerun with --resume")
        sys.exit(130)
    except Exception as error:  # a bug: one line unless --debug
        if _state["debug"]:
            raise
        console.print(
            f"[red]error:[/] {type(error).__name__}: {escape(str(error))} (rerun with --debug for the traceback)",
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
