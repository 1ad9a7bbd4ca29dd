"""`critiq mine`: CritiQ Flow on human-labelled pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from critiq.cli.app import app
from critiq.cli.data_options import DATA_HELP, DataOptions, data_options
from critiq.cli.display import console, criteria_table, pct, progress_bar
from critiq.cli.options import model_options
from critiq.errors import CritiqError
from critiq.llm.session import ModelSettings


@app.command()
@model_options
@data_options
def mine(
    pairs: Annotated[str, typer.Argument(help=f"human-labelled pairs (or points): {DATA_HELP}")],
    out: Annotated[Path, typer.Option(help="run directory")],
    n_criteria: Annotated[int, typer.Option(min=1, help="criteria in play")] = 8,
    iterations: Annotated[int, typer.Option(min=0)] = 3,
    valid: Annotated[str | None, typer.Option(help="validation pairs (named as the input)")] = None,
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print requests, tokens and price; send nothing")] = False,
    settings: ModelSettings = None,  # type: ignore[assignment]
    data: DataOptions = DataOptions(),
) -> None:
    """Mine quality criteria from human-labelled pairs (CritiQ Flow)."""
    from critiq.annotate.estimate import estimate_mine
    from critiq.data import load_examples
    from critiq.data.criteria import load_criteria
    from critiq.llm.session import open_clients
    from critiq.mine import CritiQFlow, FlowConfig

    low, high = _thresholds(thresholds)
    if swap not in ("random", "both", "none"):
        raise CritiqError(f"--swap {swap!r}: use random, both or none")
    train = load_examples(data.source(pairs), max_chars=max_chars, require_labels=True)
    valid_source = data.source(valid, sliced=False) if valid else None
    valid_examples = load_examples(valid_source, max_chars=max_chars, require_labels=True) if valid_source else None
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
    if dry_run:
        from critiq.cli.annotate import print_estimate, role_config

        estimate = estimate_mine(
            train,
            valid_examples,
            config,
            role_config(settings, "worker"),
            role_config(settings, "manager"),
            initial=initial,
        )
        print_estimate(estimate)
        return
    with open_clients(settings) as clients, progress_bar() as update:
        flow = CritiQFlow(
            config, manager=clients.manager, worker=clients.worker, init_criteria=initial, progress=update
        )
        result = flow.fit(train, valid_examples, run_dir=out, resume=resume)
    criteria_table(result.criteria)
    retrieval = result.retrieval
    if retrieval:
        console.print(
            f"knowledge base: {len(retrieval.get('candidates', []))} of {retrieval.get('knowledge_base_size')} "
            f"criteria judged ({retrieval.get('requests')} requests), kept {len(retrieval.get('kept', []))}"
        )
    console.print(
        f"majority vote accuracy {pct(result.vote.accuracy)} · requests {result.usage.requests} · "
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
