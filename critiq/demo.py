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

from critiq.api.inputs import Model
from critiq.data.loaders import load_pairs
from critiq.errors import CritiqError
from critiq.llm.usage import Usage

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


class DemoRun(BaseModel):
    """What the demo left: its HTML report, and the requests the whole run cost."""

    page: Path
    usage: Usage


def bundled(name: str) -> Path:
    """A bundled example data file (the demo's pairs and corpus)."""
    for folder in EXAMPLE_FOLDERS:
        if (folder / name).exists():
            return folder / name
    raise CritiqError(f"bundled example data {name} is missing (looked in {', '.join(map(str, EXAMPLE_FOLDERS))})")


def run_demo(
    out: str | Path,
    model: Model = None,
    settings: DemoSettings | None = None,
    progress: Progress | None = None,
) -> DemoRun:
    """Run every step into ``out`` with the library's calls (on one :class:`Session`) and return the report's path
    and the requests the run cost."""
    from critiq.api import annotating, mining, reporting, scoring
    from critiq.api.session import Session

    settings = settings or DemoSettings()
    out = Path(out)
    tick = progress or (lambda stage, done, total: None)

    with Session(model) as session:  # a missing key stops here, before anything is written
        out.mkdir(parents=True, exist_ok=True)
        # 1. mine criteria from the bundled human-labelled code pairs
        pairs = load_pairs(bundled("code_pairs.jsonl"))[: settings.train_pairs]
        mine_dir = out / "mine"
        result = mining.mine(
            pairs,
            session=session,
            run_dir=mine_dir,
            resume=(mine_dir / "state.json").exists(),
            progress=tick,
            n_criteria=settings.n_criteria,
            iterations=settings.iterations,
            kb_candidates=settings.kb_candidates,
            task="short Python functions",
            domains=["code"],
            seed=settings.seed,
        )
        criteria = result.criteria if result.passed else result.below_threshold[:1]
        if not criteria:
            raise CritiqError(f"{mine_dir}: the flow produced no judged criterion; see its report.md")
        if not result.passed:  # the embedded model judges near chance: annotate with the best criterion, said so
            log.warning(
                "no criterion passed the threshold; the demo goes on with the best below it: %s", criteria[0].name
            )
        log.info("mined %d criteria; majority-vote accuracy %s", len(criteria), result.vote.accuracy)

        # 2. annotate pairs drawn from the bundled unlabeled corpus
        corpus = bundled("code_corpus.jsonl")
        labels = annotating.annotate(
            corpus,
            criteria,
            session=session,
            out=out / "labeled.jsonl",
            corpus=True,
            max_pairs=settings.annotate_pairs,
            seed=settings.seed,
            resume=True,
            progress=lambda n: tick("annotate", n, settings.annotate_pairs),
        )

        # 3. distil the n-gram Bradley–Terry scorer from the agent labels
        tick("train scorer", 0, 1)
        labelled = labels.pairs()
        if len(labelled) < 4:
            raise CritiqError(f"only {len(labelled)} annotated pairs got a label; rerun with more pairs")
        # the demo's own folder: each rerun redoes this step
        scorer = scoring.train_scorer(labelled, "ngram", out / "scorer", seed=settings.seed, force=True)
        tick("train scorer", 1, 1)
        log.info("scorer: %s", scorer.fit_report.summary() if scorer.fit_report else "not fitted")

        # 4. score the corpus and select its best part
        tick("score + select", 0, 1)
        scored = scoring.score(corpus, out / "scorer", out / "scored.parquet", force=True)
        scoring.select(
            scored,
            fraction=settings.select_fraction,
            temperature=settings.temperature,
            seed=settings.seed,
            out=out / "selected.jsonl",
            force=True,
        )
        tick("score + select", 1, 1)

        # 5. the HTML report
        clients = session.clients
        page = reporting.report(out, models=[clients.manager.config.model, clients.worker.config.model])
        usage = clients.usage.model_copy()
    log.info("demo finished: %s", json.dumps({"criteria": [c.name for c in criteria], "report": str(page)}))
    return DemoRun(page=page, usage=usage)
