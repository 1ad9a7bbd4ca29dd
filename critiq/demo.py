"""The end-to-end demo on bundled data: mine → annotate → train the scorer → score → select → report.

Sized for the embedded model on 2 CPU cores (a few minutes). Rerunning it continues or reuses earlier work: every
request is cached and each step resumes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from critiq.data.loaders import iter_examples, load_pairs
from critiq.errors import CritiqError
from critiq.judge.worker import Worker
from critiq.llm.client import run_sync
from critiq.llm.session import Clients
from critiq.mine.flow import CritiQFlow, FlowConfig
from critiq.prompts import Prompts

log = logging.getLogger(__name__)

# installed package data first (setup.py maps examples/data/ into critiq.example_data), else the repository's folder
EXAMPLE_FOLDERS = (
    Path(__file__).resolve().parent / "example_data",
    Path(__file__).resolve().parents[1] / "examples" / "data",
)
Progress = Callable[[str, int, int], None]


class DemoSettings(BaseModel):
    """How much of the bundled data the demo uses (defaults fit a few minutes on 2 cores)."""

    train_pairs: int = 12
    n_criteria: int = 3
    iterations: int = 1
    kb_candidates: int = 3
    annotate_pairs: int = 24
    select_fraction: float = 0.25
    temperature: float = 0.5
    seed: int = 0


def bundled(name: str) -> Path:
    """A bundled example data file (the demo's pairs and corpus)."""
    for folder in EXAMPLE_FOLDERS:
        if (folder / name).exists():
            return folder / name
    raise CritiqError(f"bundled example data {name} is missing (looked in {', '.join(map(str, EXAMPLE_FOLDERS))})")


def run_demo(
    out: str | Path, clients: Clients, settings: DemoSettings | None = None, progress: Progress | None = None
) -> Path:
    """Run every step into ``out`` and return the path of the HTML report."""
    from critiq.annotate import annotate, draw_pairs
    from critiq.annotate.annotator import failed_path
    from critiq.data.criteria import load_criteria
    from critiq.llm.usage import Usage
    from critiq.rundir.annotation import record_annotation
    from critiq.rundir.selection import record_selection
    from critiq.score.corpus import score_corpus
    from critiq.score.selection import select_file
    from critiq.scorer import make_scorer

    settings = settings or DemoSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tick = progress or (lambda stage, done, total: None)

    # 1. mine criteria from the bundled human-labelled code pairs
    pairs = load_pairs(bundled("code_pairs.jsonl"))[: settings.train_pairs]
    config = FlowConfig(
        n_criteria=settings.n_criteria,
        iterations=settings.iterations,
        kb_candidates=settings.kb_candidates,
        task="short Python functions",
        domains=["code"],
        seed=settings.seed,
    )
    flow = CritiQFlow(config, manager=clients.manager, worker=clients.worker, progress=tick)
    mine_dir = out / "mine"
    result = flow.fit(pairs, run_dir=mine_dir, resume=(mine_dir / "state.json").exists())
    criteria = load_criteria(mine_dir / "criteria.json") if result.passed else result.below_threshold[:1]
    if not criteria:
        raise CritiqError(f"{mine_dir}: the flow produced no judged criterion; see its report.md")
    if not result.passed:  # the embedded model judges near chance: annotate with the best criterion, said as such
        log.warning("no criterion passed the threshold; the demo goes on with the best below it: %s", criteria[0].name)
    log.info("mined %d criteria; majority-vote accuracy %s", len(criteria), result.vote.accuracy)

    # 2. annotate pairs drawn from the bundled unlabeled corpus
    corpus = bundled("code_corpus.jsonl")
    drawn = draw_pairs(iter_examples(corpus), seed=settings.seed, max_pairs=settings.annotate_pairs)
    worker = Worker(clients.worker, Prompts(), swap="random", seed=settings.seed)
    labeled = out / "labeled.jsonl"
    before = clients.usage.model_copy()
    summary = run_sync(
        annotate(
            drawn,
            criteria,
            worker,
            labeled,
            resume=True,
            batch_size=8,
            progress=lambda n: tick("annotate", n, settings.annotate_pairs),
        )
    )
    spent = clients.usage.model_dump()
    annotate_usage = Usage(**{k: spent[k] - before.model_dump()[k] for k in spent})
    record_annotation(
        labeled,
        summary,
        annotate_usage,
        model=clients.worker.config.model,
        form=getattr(clients.worker, "form", None),
        failed=failed_path(labeled),
        uses_local_model=clients.is_embedded(clients.worker),
    )

    # 3. distil the n-gram Bradley–Terry scorer from the agent labels
    tick("train scorer", 0, 1)
    scorer = make_scorer("ngram")
    labelled_pairs = [p for p in load_pairs(labeled) if p.preferred is not None]
    if len(labelled_pairs) < 4:
        raise CritiqError(f"only {len(labelled_pairs)} annotated pairs got a label; rerun with more pairs")
    report = scorer.fit(labelled_pairs, seed=settings.seed)
    scorer.save(out / "scorer", force=True)  # the demo's own folder: each rerun redoes this step
    tick("train scorer", 1, 1)
    log.info("scorer: %s", report.summary())

    # 4. score the corpus and select its best part
    tick("score + select", 0, 1)
    score_corpus(corpus, out / "scorer", out / "scored.parquet", force=True)
    chosen = select_file(
        out / "scored.parquet",
        out / "selected.jsonl",
        fraction=settings.select_fraction,
        temperature=settings.temperature,
        seed=settings.seed,
        force=True,
    )
    record_selection(
        out / "selected.jsonl",
        selected=chosen.n_selected,
        scored=chosen.n_total,
        fraction=settings.select_fraction,
        temperature=settings.temperature,
        seed=settings.seed,
    )
    tick("score + select", 1, 1)

    # 5. the HTML report
    from critiq.report import render_html

    page = render_html(out, models=[clients.manager.config.model, clients.worker.config.model])
    log.info("demo finished: %s", json.dumps({"criteria": [c.name for c in criteria], "report": str(page)}))
    return page
