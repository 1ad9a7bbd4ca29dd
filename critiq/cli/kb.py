"""`critiq kb`: browse, search, extend and check the knowledge base of quality criteria."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from critiq.errors import CritiqError
from critiq.knowledge import KBEntry, KnowledgeBase, append_entry
from critiq.knowledge.entry import describe_error

app = typer.Typer(
    name="kb",
    help="Browse, search, extend and check the knowledge base of published quality criteria.",
    no_args_is_help=True,
)

P = ParamSpec("P")
R = TypeVar("R")

KbOption = Annotated[
    Path | None, typer.Option("--kb", help="Your criteria (YAML/JSONL file or folder), merged over the bundled ones.")
]
DomainOption = Annotated[
    list[str] | None, typer.Option("--domain", "-d", help="Keep criteria tagged with this domain (repeatable).")
]


def _out() -> Console:
    return Console(highlight=False)


def _fail(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error: {escape(message)}[/red]")


def _reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``CritiqError`` into one red ``error:`` line and exit status 2."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CritiqError as exc:
            _fail(str(exc))
            raise typer.Exit(2) from None

    return wrapper


def _table(entries: list[KBEntry], *, descriptions: bool = False) -> Table:
    table = Table(show_lines=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("kind")
    table.add_column("domains")
    if descriptions:
        table.add_column("description", overflow="fold")
    else:
        table.add_column("source", overflow="fold")
    for entry in entries:
        last = entry.description if descriptions else f"{entry.source.title} ({entry.source.year})"
        table.add_row(entry.name, entry.kind, ", ".join(entry.domains), escape(last))
    return table


@app.command("list")
@_reports_errors
def list_criteria(domain: DomainOption = None, kb: KbOption = None) -> None:
    """List criteria, optionally only those of some domains."""
    base = KnowledgeBase.load(kb)
    entries = base.search(domains=domain)
    _out().print(_table(entries))
    _out().print(f"{len(entries)} of {len(base)} criteria")


@app.command("show")
@_reports_errors
def show(name: Annotated[str, typer.Argument(help="Criterion name.")], kb: KbOption = None) -> None:
    """Show one criterion in full, with its citation."""
    base = KnowledgeBase.load(kb)
    entry = base.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, base.names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CritiqError(f"no criterion named '{name}'{hint}")
    console = _out()
    console.print(f"[bold]{entry.name}[/bold]  ({entry.kind}; {', '.join(entry.domains)})")
    console.print(escape(entry.description))
    console.print(f"source: {escape(entry.source.title)} ({entry.source.year}) {entry.source.url}")
    console.print(f"defined at: {escape(base.origin(name) or '?')}")


@app.command("search")
@_reports_errors
def search(
    query: Annotated[str, typer.Argument(help="Keywords to match against names and descriptions.")],
    domain: DomainOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")] = 10,
    kb: KbOption = None,
) -> None:
    """Rank criteria by keyword match (BM25 over name and description)."""
    entries = KnowledgeBase.load(kb).search(query, domains=domain, limit=limit)
    if not entries:
        _out().print("no criteria match")
        return
    _out().print(_table(entries, descriptions=True))


@app.command("add")
@_reports_errors
def add(
    file: Annotated[Path, typer.Option("--file", help="Your YAML or JSONL file to append to (created if absent).")],
    from_run: Annotated[
        Path | None,
        typer.Option(
            "--from-run",
            help="A `critiq mine` run directory: append its final criteria, with their measured accuracy, n, "
            "interval, models, task and domains as the source (instead of --name ... --source-url).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="snake_case name, unique across the knowledge base.")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What to judge and how to pick the better text.")
    ] = None,
    domains: Annotated[
        str | None, typer.Option("--domains", help="Comma-separated domain tags, e.g. code,education.")
    ] = None,
    source_title: Annotated[
        str | None, typer.Option("--source-title", help="Title of the work the criterion comes from.")
    ] = None,
    source_year: Annotated[int | None, typer.Option("--source-year", help="Publication year.")] = None,
    source_url: Annotated[str | None, typer.Option("--source-url", help="Link to the work (arXiv, DOI, ...).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="pairwise, pointwise or both.")] = "both",
) -> None:
    """Append a criterion to your own knowledge-base file, or every final criterion of a run (--from-run)."""
    fields = {
        "--name": name,
        "--description": description,
        "--domains": domains,
        "--source-title": source_title,
        "--source-year": source_year,
        "--source-url": source_url,
    }
    if from_run is not None:
        given = [flag for flag, value in fields.items() if value is not None]
        if given:
            raise CritiqError(f"--from-run takes the criteria from the run: drop {', '.join(given)}")
        _add_from_run(from_run, file)
        return
    missing = [flag for flag, value in fields.items() if value is None]
    if missing:
        raise CritiqError(f"missing {', '.join(missing)} (or give --from-run RUN_DIR)")
    raw = {
        "name": name,
        "description": description,
        "domains": [tag for tag in (domains or "").split(",") if tag.strip()],
        "kind": kind,
        "source": {"title": source_title, "year": source_year, "url": source_url},
    }
    try:
        entry = KBEntry.model_validate(raw)
    except ValidationError as exc:
        raise CritiqError(f"invalid criterion: {describe_error(exc)}") from None
    merged = append_entry(file, entry)
    console = _out()
    console.print(f"added '{entry.name}' to {escape(str(file))}")
    _near(console, merged, entry.name, named=False)


def _add_from_run(run_dir: Path, file: Path) -> None:
    from critiq.knowledge.mined import entries_from_run

    kb = KnowledgeBase.load(file if file.exists() else None)
    entries, notes = entries_from_run(run_dir, kb)
    console = _out()
    for note in notes:
        console.print(f"[yellow]note: {escape(note)}[/yellow]")
    merged = kb
    added = []
    for entry in entries:
        try:
            merged = append_entry(file, entry)
        except CritiqError as error:  # the checks of `kb validate`: that criterion stays out, the others go in
            console.print(f"[yellow]note: {escape(str(error))}[/yellow]", soft_wrap=True)
            continue
        added.append(entry)
        console.print(f"added '{entry.name}' to {escape(str(file))} ({escape(entry.citation)})", soft_wrap=True)
    for entry in added:
        _near(console, merged, entry.name)
    if not added:
        console.print("nothing added")


def _near(console: Console, merged: KnowledgeBase, name: str, *, named: bool = True) -> None:
    for a, b, score in merged.near_duplicates():
        if name in (a, b):
            other = b if a == name else a
            which = f"'{name}'" if named else "name"
            console.print(f"[yellow]note: {which} is close to '{other}' (word overlap {score:.2f})[/yellow]")


@app.command("validate")
@_reports_errors
def validate(
    kb: KbOption = None,
    bundled: Annotated[bool, typer.Option("--bundled/--no-bundled", help="Include the bundled criteria.")] = True,
) -> None:
    """Check the knowledge base: count, problems and near-duplicate names. Exits 1 when there are problems."""
    if kb is None and not bundled:
        raise CritiqError("nothing to validate: give --kb PATH or drop --no-bundled")
    base = KnowledgeBase.load(kb, bundled=bundled)
    problems = base.validate()
    duplicates = base.near_duplicates()
    console = _out()
    console.print(f"{len(base)} criteria, {len(problems)} problem(s), {len(duplicates)} near-duplicate pair(s)")
    for problem in problems:
        console.print(f"[red]problem: {escape(problem)}[/red]", soft_wrap=True)
    if duplicates:
        table = Table(title="near-duplicate names (word-set Jaccard > 0.3)")
        table.add_column("name", no_wrap=True)
        table.add_column("similar to", no_wrap=True)
        table.add_column("jaccard", justify="right")
        for a, b, score in duplicates:
            table.add_row(a, b, f"{score:.2f}")
        console.print(table)
    if problems:
        raise typer.Exit(1)


def _register() -> None:
    from critiq.cli.app import app as root

    root.add_typer(app, name="kb")


_register()
