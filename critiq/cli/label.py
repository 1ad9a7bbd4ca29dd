"""`critiq label`: a local page where a person labels pairs drawn from a corpus; `--agreement` compares annotators."""

from __future__ import annotations

import asyncio
import getpass
import webbrowser
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from critiq.cli.app import app
from critiq.cli.data_options import DataOptions, data_options
from critiq.cli.display import console
from critiq.cli.options import model_options
from critiq.data.sources import Source
from critiq.errors import CritiqError, InputError
from critiq.llm.session import ModelSettings
from critiq.stats import pct

RANK_BY = ("auto", "scorer", "criteria", "random")


@app.command()
@model_options
@data_options
def label(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="CORPUS",
            help="texts to pair (anything `annotate --corpus` reads); with --agreement, label files",
            show_default=False,
        ),
    ],
    out: Annotated[Path | None, typer.Option(help="labels (jsonl); rerun on the same file to resume")] = None,
    target: Annotated[int, typer.Option(min=1, help="labels to aim for (progress k / target)")] = 30,
    task: Annotated[str | None, typer.Option(help='what the texts are, shown on the page ("Python code")')] = None,
    annotator: Annotated[str | None, typer.Option(help="who labels (default: the login name)")] = None,
    host: Annotated[str, typer.Option(help="interface to listen on (another than 127.0.0.1 exposes the page)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on (0 = any free one)")] = 8765,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="print the URL, do not open a browser")] = False,
    text_field: Annotated[str, typer.Option(help="text field of the corpus")] = "text",
    prompt_field: Annotated[str, typer.Option(help="field naming the prompt a text answers (pairs share it)")] = (
        "prompt"
    ),
    max_texts: Annotated[int | None, typer.Option(min=2, help="read at most this many texts")] = 20000,
    length_matched: Annotated[bool, typer.Option(help="pair texts of similar length")] = True,
    rank_by: Annotated[
        str, typer.Option(help="auto | scorer | criteria | random (auto: criteria with --model, else scorer)")
    ] = "auto",
    random_first: Annotated[int, typer.Option(min=0, help="random pairs before active selection")] = 8,
    pool: Annotated[int | None, typer.Option(min=1, help="candidates ranked per pick (200; 6 for criteria)")] = None,
    kb_criteria: Annotated[int, typer.Option(min=1, help="knowledge-base criteria judged with --rank-by criteria")] = (
        4
    ),
    language: Annotated[str, typer.Option(help="prompt language of the worker: en | zh")] = "en",
    seed: Annotated[int, typer.Option()] = 0,
    agreement: Annotated[
        bool, typer.Option("--agreement", help="print agreement between the annotators of the label files given")
    ] = False,
    settings: ModelSettings = ModelSettings(),
    data: DataOptions = DataOptions(),
) -> None:
    """Label pairs of CORPUS on a local page: the first step, before `critiq mine`."""
    if agreement:
        _print_agreement(inputs)
        return
    if len(inputs) != 1:
        raise CritiqError(f"give one CORPUS, got {len(inputs)} (several label files go with --agreement)")
    if out is None:
        raise CritiqError("--out is required: the file of labels (jsonl)")
    if rank_by not in RANK_BY:
        raise CritiqError(f"--rank-by {rank_by!r}: use one of {', '.join(RANK_BY)}")
    corpus = inputs[0]
    if Path(corpus).exists() and Path(corpus).resolve() == out.resolve():
        raise CritiqError("--out must not be the corpus")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/] --host {escape(host)}: anyone who can reach it and has the printed URL (it holds "
            "the key) can read and label"
        )
    if rank_by == "auto":
        rank_by = "criteria" if settings.model or settings.worker_model else "scorer"
    _serve(
        data.source(corpus),
        out,
        settings,
        rank_by=rank_by,
        target=target,
        task=task,
        annotator=annotator or _login_name(),
        host=host,
        port=port,
        browser=not no_browser,
        text_field=text_field,
        prompt_field=prompt_field,
        max_texts=max_texts,
        length_matched=length_matched,
        random_first=random_first,
        pool=pool,
        kb_criteria=kb_criteria,
        language=language,
        seed=seed,
    )


def _serve(corpus: Source, out: Path, settings: ModelSettings, *, rank_by: str, **options: Any) -> None:
    from critiq.label import CandidatePool, LabelSession, LabelStore, ScorerRanker, Selector, make_app, read_corpus
    from critiq.label import serve as serve_page
    from critiq.label.selection import Ranker

    texts = read_corpus(
        corpus,
        text_field=options["text_field"],
        prompt_field=options["prompt_field"],
        max_texts=options["max_texts"],
    )
    try:
        store = LabelStore(out)
    except InputError as error:
        raise CritiqError(f"--out {error}") from None
    with ExitStack() as stack:
        stack.callback(store.close)
        ranker: Ranker | None = None
        if rank_by == "scorer":
            ranker = ScorerRanker(seed=options["seed"])
        elif rank_by == "criteria":
            ranker = _criteria_ranker(stack, texts, settings, options)
        pool_size = options["pool"] or (6 if rank_by == "criteria" else 200)
        selector = Selector(ranker, random_first=options["random_first"], pool_size=pool_size)
        session = LabelSession(
            CandidatePool(texts, seed=options["seed"], length_matched=options["length_matched"]),
            store,
            selector,
            annotator=options["annotator"],
            source=corpus.name,
            target=options["target"],
            task=options["task"],
        )

        def ready(url: str) -> None:
            console.print(
                f"{len(texts)} texts · {len(store.labels)} labels and {len(store.skipped)} skipped already in "
                f"{escape(str(out))} · picking: {options['random_first']} random, then {rank_by}",
                soft_wrap=True,
            )
            console.print(
                f"[bold green]labelling page:[/] {url}  (Ctrl-C stops; each answer is saved at once)", soft_wrap=True
            )
            if options["browser"]:
                webbrowser.open(url)

        async def run() -> None:
            try:
                await serve_page(make_app(session), options["host"], options["port"], ready)
            finally:
                if rank_by == "criteria":
                    from critiq.llm.transport import close_loop_sessions

                    await close_loop_sessions()

        with suppress(KeyboardInterrupt):
            asyncio.run(run())
    console.print(
        f"{len(store.labels)} labels in {escape(str(out))}, {len(store.skipped)} skipped in "
        f"{escape(str(store.skipped_out))} · next: critiq mine {escape(str(out))} --out runs/mine",
        soft_wrap=True,
    )


def _criteria_ranker(stack: ExitStack, texts: list[Any], settings: ModelSettings, options: dict[str, Any]) -> Any:
    from critiq.label.selection import open_criteria_ranker

    ranker = stack.enter_context(
        open_criteria_ranker(
            texts,
            settings,
            task=options["task"],
            count=options["kb_criteria"],
            language=options["language"],
            seed=options["seed"],
        )
    )
    names = ", ".join(c.name for c in ranker.criteria)
    console.print(
        f"ranking by the split of {len(ranker.criteria)} knowledge-base criteria: {escape(names)}", soft_wrap=True
    )
    return ranker


def _print_agreement(files: list[str]) -> None:
    from critiq.label import agreement

    if len(files) < 1:
        raise CritiqError("--agreement needs label files")
    table = Table("annotators", "n", "raw agreement", "Cohen's kappa", title="agreement on pairs labelled twice")
    for row in agreement(files):
        names = "all pairs of annotators" if row.first == row.second else f"{row.first} · {row.second}"
        kappa = "– (undefined: one side only)" if row.kappa is None else f"{row.kappa:.3f}"
        table.add_row(escape(names), str(row.n), pct(row.raw), kappa)
    console.print(table)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "anonymous"
