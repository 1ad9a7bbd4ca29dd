"""The paper's ablation table for your own data: the flow, each variant and the baselines on one train/test split.

Every method mines (or picks) its criteria on TRAIN and is scored by its final majority vote on TEST: ``accuracy``
counts a tie (no label) as wrong, as the reference does, with ``decided_accuracy`` (over labelled examples) and
``coverage`` beside it, each accuracy with a Wilson 95% interval. All methods share the clients, so with a request
cache a cell that two methods judge is asked once: a method's ``requests`` are what it sent beyond what earlier methods
had already asked.

Rows: ``flow``; ``no-reflection``; ``no-kb``; ``no-reflection-no-kb`` (the paper's "w/o both"); ``all-in-one`` (the
flow's final criteria judged in one prompt with one A/B answer: the reference's "all criteria in one prompt"
baseline); ``all-in-one-mined`` (the whole flow run under all-in-one judging, one verdict per criterion);
``overall`` (no criteria, A or B: the reference's single-judge baseline); ``best-kb-criterion`` (the knowledge-base
criterion most accurate on TRAIN among those that judged at least half of the TRAIN examples).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from critiq.data.models import Criterion, Example
from critiq.errors import CritiqError, InputError
from critiq.io import atomic_write_json, atomic_write_text, write_jsonl
from critiq.judge.metrics import criterion_stats
from critiq.judge.modes import WorkerMode
from critiq.judge.vote import majority, vote_stats
from critiq.judge.worker import Worker
from critiq.llm.client import LLMClient
from critiq.llm.usage import Usage
from critiq.mine.candidates import kb_candidates
from critiq.mine.config import FlowConfig
from critiq.mine.flow import CritiQFlow
from critiq.prompts import Prompts
from critiq.rundir.ablation import ABLATION_FILE, AblationRow, AblationTable
from critiq.stats import interval_text, pct

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# method -> the FlowConfig change that makes it (flow variants), or None (baselines)
VARIANTS: dict[str, dict[str, Any] | None] = {
    "flow": {},
    "no-reflection": {"reflection": False},
    "no-kb": {"use_kb": False},
    "no-reflection-no-kb": {"reflection": False, "use_kb": False},
    "all-in-one": None,
    "all-in-one-mined": {"judge": "all-in-one"},
    "overall": None,
    "best-kb-criterion": None,
}
METHODS = tuple(VARIANTS)
OVERALL = Criterion(name="overall", description="Which text is better overall?", origin="user")
MIN_JUDGED = 0.5  # best-kb-criterion: share of the TRAIN examples a candidate must have judged (A or B)


def combined(criteria: Sequence[Criterion]) -> Criterion:
    """The set of ``criteria`` as one criterion whose description lists them (``combined`` judging)."""
    listing = "\n".join(f"- {c.name}: {c.description}" for c in criteria)
    return Criterion(name="all_criteria", description=listing, origin="user")


class Ablation:
    """Runs the methods in order on one split, sharing the manager and worker clients (and so their cache)."""

    def __init__(
        self,
        config: FlowConfig,
        *,
        manager: LLMClient,
        worker: LLMClient,
        init_criteria: Sequence[Criterion] = (),
        progress: Progress | None = None,
    ) -> None:
        self.config = config
        self.manager = manager
        self.worker = worker
        self.init_criteria = list(init_criteria)
        self.progress = progress
        self.prompts = Prompts(config.language, config.prompts_dir)
        self._workers: dict[WorkerMode, Worker] = {}
        self._flows: dict[str, tuple[list[Criterion], bool]] = {}
        self.test_rows: list[dict[str, Any]] = []

    async def run(
        self, train: Sequence[Example], test: Sequence[Example], out: str | Path, methods: Sequence[str] = METHODS
    ) -> list[AblationRow]:
        """Every method's row, written to ``out/ablation.json`` and ``out/ablation.md`` (and each flow's run
        directory to ``out/<method>/``; a rerun on the same ``out`` resumes them)."""
        unknown = [m for m in methods if m not in VARIANTS]
        if unknown:
            raise InputError(f"methods={unknown[0]!r}: choose from {', '.join(METHODS)}")
        train, test = list(train), list(test)
        if not test or any(e.gold is None for e in test):
            raise CritiqError("test: needs human-labelled examples (every one with a label)")
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for method in methods:
            before = self._usage()
            criteria, passed, mode = await self._criteria(method, train, out)
            row = await self._score(method, criteria, passed, mode, test)
            spent = _minus(self._usage(), before)
            rows.append(
                row.model_copy(
                    update={
                        "requests": spent.requests,
                        "prompt_tokens": spent.prompt_tokens,
                        "completion_tokens": spent.completion_tokens,
                        "cache_hits": spent.cache_hits,
                    }
                )
            )
            log.info(
                "ablation %s: accuracy %s (decided %s) on %d test examples",
                method,
                row.accuracy,
                row.decided_accuracy,
                row.n,
            )
        write_jsonl(out / "test_judgments.jsonl", self.test_rows)
        table = AblationTable(
            rows=rows,
            train_examples=len(train),
            test_examples=len(test),
            models=self._models(),
            config=self.config.model_dump(mode="json"),
        )
        atomic_write_json(out / ABLATION_FILE, table.model_dump(mode="json"))
        atomic_write_text(out / "ablation.md", render_table(rows, len(train), len(test), self._models()))
        return rows

    # ------------------------------------------------------------------ methods
    async def _criteria(self, method: str, train: list[Example], out: Path) -> tuple[list[Criterion], bool, WorkerMode]:
        change = VARIANTS[method]
        if change is not None:
            voters, passed = await self._flow(method, train, out)
            return voters, passed, self.config.model_copy(update=change).judge
        if method == "all-in-one":
            voters, passed = await self._flow("flow", train, out)
            return [combined(voters)], passed, "combined"
        if method == "overall":
            return [OVERALL], True, "overall"
        return await self._best_kb_criterion(train), True, "per-criterion"

    async def _flow(self, method: str, train: list[Example], out: Path) -> tuple[list[Criterion], bool]:
        """The voters of the flow variant ``method`` (run once, resumed from ``out/<method>/`` when there)."""
        if method not in self._flows:
            config = self.config.model_copy(update=VARIANTS[method] or {})
            flow = CritiQFlow(
                config,
                manager=self.manager,
                worker=self.worker,
                init_criteria=self.init_criteria,
                progress=self._stage(method),
            )
            run_dir = out / method
            result = await flow.afit(train, run_dir=run_dir, resume=(run_dir / "state.json").exists())
            self._flows[method] = (result.voters, result.passed)
        return self._flows[method]

    async def _best_kb_criterion(self, train: list[Example]) -> list[Criterion]:
        """The knowledge-base criterion of best decided accuracy on TRAIN among those that judged (A or B) at least
        half of the TRAIN examples (ties broken at random, seeded)."""
        from critiq.knowledge.retrieval import rank_by_accuracy

        if self.config.kb_candidates < 1:
            raise CritiqError("best-kb-criterion needs `kb_candidates` >= 1")
        _, candidates = kb_candidates(self.config, train)
        worker = self._worker("per-criterion")
        await worker.judge(train, candidates, progress=self._stage("best-kb-criterion"))
        gold = {e.id: e.gold for e in train}
        stats = {c.name: criterion_stats(worker.verdicts(c, train), gold) for c in candidates}
        eligible = {name: s for name, s in stats.items() if s.n and s.judged >= MIN_JUDGED * s.n}
        best = rank_by_accuracy(eligible, min_accuracy=-1.0, top=1, seed=self.config.seed)
        if not best:
            raise CritiqError(
                f"best-kb-criterion: no knowledge-base candidate judged at least {MIN_JUDGED:.0%} of the training "
                "examples"
            )
        chosen = next(c for c in candidates if c.name == best[0])
        return [chosen.model_copy(update={"stats": stats[chosen.name]})]

    async def _score(
        self, method: str, criteria: list[Criterion], passed: bool, mode: WorkerMode, test: list[Example]
    ) -> AblationRow:
        """The majority vote of ``criteria`` on TEST (a tie gives no label: wrong in ``accuracy``, outside
        ``decided_accuracy``, and against coverage)."""
        worker = self._worker(mode)
        await worker.judge(test, criteria, progress=self._stage(f"{method} test"))
        again = worker.missing(test, criteria)
        if again:
            await worker.judge(test, criteria)
        predicted = []
        for example in test:
            # a failed (or never answered) cell is null, never the abstention "none"
            verdicts = {c.name: (j.verdict if (j := worker.verdict(c, example)) else None) for c in criteria}
            vote = majority(list(verdicts.values()), self.config.margin)
            predicted.append(vote)
            self.test_rows.append(
                {"method": method, "id": example.id, "gold": example.gold, "verdicts": verdicts, "vote": vote}
            )
        stats = vote_stats(predicted, [e.gold or "" for e in test])
        low, high = stats.interval if stats.interval is not None else (None, None)
        decided_low, decided_high = stats.decided_interval if stats.decided_interval is not None else (None, None)
        return AblationRow(
            method=method,
            accuracy=stats.accuracy,
            n=stats.n,
            ci_low=low,
            ci_high=high,
            decided_accuracy=stats.decided_accuracy,
            decided_ci_low=decided_low,
            decided_ci_high=decided_high,
            coverage=stats.coverage,
            requests=0,
            prompt_tokens=0,
            completion_tokens=0,
            criteria=[c.name for c in criteria],
            passed=passed,
        )

    # ------------------------------------------------------------------ plumbing
    def _worker(self, mode: WorkerMode) -> Worker:
        if mode not in self._workers:
            self._workers[mode] = Worker(
                self.worker, self.prompts, swap=self.config.swap, seed=self.config.seed, mode=mode
            )
        return self._workers[mode]

    def _usage(self) -> Usage:
        counters = [self.manager.usage] + ([] if self.worker.usage is self.manager.usage else [self.worker.usage])
        total = Usage()
        for counter in counters:
            total = total.add(counter)
        return total

    def _models(self) -> dict[str, str]:
        return {"manager": self.manager.config.model, "worker": self.worker.config.model}

    def _stage(self, method: str) -> Callable[..., None]:
        def tick(*args: Any) -> None:
            if self.progress is None:
                return
            if len(args) == 3:  # a flow's (stage, done, total)
                self.progress(f"{method}: {args[0]}", args[1], args[2])
            else:  # a worker's (done, total)
                self.progress(method, args[0], args[1])

        return tick


def _minus(after: Usage, before: Usage) -> Usage:
    return Usage(**{name: getattr(after, name) - getattr(before, name) for name in Usage.model_fields})


def render_table(rows: Sequence[AblationRow], n_train: int, n_test: int, models: dict[str, str]) -> str:
    """``ablation.md``: one row per method, and what the numbers mean."""
    lines = [
        f"# Ablation on {n_train} training and {n_test} test examples",
        "",
        f"manager {models.get('manager')}, worker {models.get('worker')}. Accuracy of each method's final majority "
        "vote on the test examples, a tie (no label) counting as wrong as in the reference; decided accuracy over the "
        "examples that got a label; coverage their share; each accuracy with its Wilson 95% interval.",
        "",
        "| method | accuracy | 95% interval | decided accuracy | 95% interval | coverage | n | requests | "
        "prompt tokens | completion tokens | criteria |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        interval = interval_text(None if r.ci_low is None or r.ci_high is None else (r.ci_low, r.ci_high))
        decided = interval_text(
            None if r.decided_ci_low is None or r.decided_ci_high is None else (r.decided_ci_low, r.decided_ci_high)
        )
        names = ", ".join(r.criteria) + ("" if r.passed else " (below threshold: none passed)")
        lines.append(
            f"| {r.method} | {pct(r.accuracy)} | {interval} | {pct(r.decided_accuracy)} | {decided} | "
            f"{pct(r.coverage)} | {r.n} | {r.requests} | {r.prompt_tokens} | {r.completion_tokens} | {names} |"
        )
    lines += [
        "",
        "Requests and tokens are what each method sent beyond the methods above it: cells they share come from the "
        "request cache. Methods whose criteria all missed the threshold vote with the best criteria below it, marked "
        "as such.",
    ]
    if any("smollm2" in str(name).lower() for name in models.values()):
        lines += ["", "The embedded SmolLM2-135M judges near chance: this table shows the mechanics, not the method."]
    return "\n".join(lines) + "\n"
