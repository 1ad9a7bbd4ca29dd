"""CritiQ Flow: mine quality criteria from a few human-labelled examples.

Faithful to the paper (warm-up, knowledge-base retrieval, evaluate → keep good / reflect on mid / replace low,
majority vote), with these differences: a criterion text is judged once per example (an in-run memo plus the request
cache), critiques for all mid criteria run concurrently, worker outputs are schema-constrained, every manager reply
is validated, and the run directory holds a checkpoint after every step but never a key.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair
from critiq.errors import BudgetExceeded, CritiqError
from critiq.llm.protocol import ChatClient
from critiq.llm.sync import run_sync
from critiq.llm.usage import Usage
from critiq.mine.judge import SwapMode, Worker
from critiq.mine.manager import Manager
from critiq.mine.metrics import criterion_stats, position_bias
from critiq.mine.result import FlowResult, write_outputs
from critiq.mine.state import HistoryRow, RunDir, RunState, Slot, fingerprint
from critiq.mine.vote import majority, vote_matrix, vote_stats, weighted_vote_stats
from critiq.prompts import Prompts

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


class FlowConfig(BaseModel):
    """Settings of a CritiQ Flow run (the defaults follow the paper where it gives one)."""

    n_criteria: int = Field(default=8, ge=1, description="criteria kept in play at each iteration")
    iterations: int = Field(default=3, ge=0)
    low: float = Field(default=0.5, ge=0, le=1, description="accuracy at or below which a criterion is replaced")
    high: float = Field(default=0.75, ge=0, le=1, description="accuracy at or above which a criterion is good")
    final_threshold: float | None = Field(default=None, description="accuracy a final criterion needs (default high)")
    min_final: int = Field(default=1, ge=0, description="keep at least this many (best first) if few pass")
    swap: SwapMode = "random"
    margin: int = Field(default=0, ge=0, description="majority vote: votes one side needs beyond the other")
    max_critiques: int = Field(default=4, ge=1, description="wrong cases critiqued per mid criterion")
    use_kb: bool = True
    kb_path: str | None = None
    kb_candidates: int = Field(default=24, ge=0, description="knowledge-base criteria judged during retrieval")
    kb_keep: int | None = Field(default=None, description="retrieved criteria kept (default half of n_criteria)")
    task: str = Field(default="training data", description="one line on what the data is, for the manager and KB")
    domains: list[str] = Field(default_factory=list)
    language: str = "en"
    prompts_dir: str | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> FlowConfig:
        if not self.low < self.high:
            raise ValueError(f"--thresholds: low ({self.low}) must be below high ({self.high})")
        return self

    def results_config(self) -> dict[str, Any]:
        """Settings that change results; part of the resume fingerprint."""
        return self.model_dump(exclude={"language", "prompts_dir"}) | {"language": self.language}


class CritiQFlow:
    """Mine criteria: ``CritiQFlow(manager=..., worker=...).fit(pairs)`` → :class:`FlowResult`.

    ``manager`` and ``worker`` are chat clients such as :class:`~critiq.llm.LLMClient` (maybe the same). Without them,
    ``fit`` opens clients from default settings (the embedded local model when no key is configured).
    """

    def __init__(
        self,
        config: FlowConfig | None = None,
        *,
        manager: ChatClient | None = None,
        worker: ChatClient | None = None,
        init_criteria: Sequence[Criterion] = (),
        progress: Progress | None = None,
        **options: Any,
    ) -> None:
        self.config = config or FlowConfig(**options)
        self.manager_client = manager
        self.worker_client = worker or manager
        self.init_criteria = list(init_criteria)
        self.progress = progress
        self.prompts = Prompts(self.config.language, self.config.prompts_dir)

    # ------------------------------------------------------------------ API
    def fit(
        self,
        train: Sequence[Example],
        valid: Sequence[Example] | None = None,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ) -> FlowResult:
        """Run the flow (blocking; also inside a notebook's event loop)."""
        if self.manager_client is None:
            from critiq.llm.session import open_clients

            with open_clients() as clients:
                self.manager_client, self.worker_client = clients.manager, clients.worker
                try:
                    return run_sync(self.afit(train, valid, run_dir=run_dir, resume=resume))
                finally:
                    self.manager_client = self.worker_client = None
        return run_sync(self.afit(train, valid, run_dir=run_dir, resume=resume))

    async def afit(
        self,
        train: Sequence[Example],
        valid: Sequence[Example] | None = None,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ) -> FlowResult:
        """The async form of :meth:`fit`."""
        assert self.manager_client is not None and self.worker_client is not None
        train = list(train)
        _check_examples(train, "train")
        run = RunDir(run_dir or tempfile.mkdtemp(prefix="critiq-run-"))
        state = self._open_state(run, train, resume)
        worker = Worker(self.worker_client, self.prompts, swap=self.config.swap, seed=self.config.seed)
        for key, judgment in run.judgments():
            worker.load(key, judgment)
        manager = Manager(
            self.manager_client, self.prompts, task=self.config.task, max_tokens=self.manager_client.config.max_tokens
        )
        manager.notes = list(state.notes)
        appender = run.appender()
        written = 0

        def on_judgment(key: str, judgment: Judgment) -> None:
            nonlocal written
            appender.write({"key": key, "judgment": judgment.model_dump()})
            written += 1
            if written % 10 == 0:  # keep usage.json close to the truth should the process be killed
                run.write("usage.json", self._total_usage(state).model_dump())

        worker.on_judgment = on_judgment
        try:
            await self._run(state, run, train, worker, manager)
            result = await self._finish(state, run, train, valid, worker)
        except BudgetExceeded:
            self._checkpoint(state, run)
            raise
        finally:
            appender.close()
            run.write("usage.json", self._total_usage(state).model_dump())
        log.info(
            "flow finished: %d criteria, %d requests, %d cache hits",
            len(result.criteria),
            result.usage.requests,
            result.usage.cache_hits,
        )
        return result

    # ------------------------------------------------------------------ steps
    async def _run(self, state: RunState, run: RunDir, train: list[Example], worker: Worker, manager: Manager) -> None:
        gold = {e.id: e.gold for e in train}
        if state.step == "start":
            state.notes = await manager.warm_up(train, progress=lambda d, t: self._tick("warm-up", d, t))
            state.slots = [
                Slot(id=i, current=c) for i, c in enumerate(await self._initial(state, train, worker, manager))
            ]
            if not state.slots:
                raise CritiqError("no initial criteria: the manager proposed none and none were given or retrieved")
            state.step = "iterating"
            self._checkpoint(state, run)
        while state.step == "iterating" and state.iteration <= self.config.iterations:
            final_round = state.iteration == self.config.iterations
            if state.phase == "evaluate":
                await self._evaluate(state, train, worker, gold)
                state.phase = "done" if final_round else "reflect"
                self._checkpoint(state, run)
                run.write(
                    f"iterations/iteration_{state.iteration}.json",
                    [row.model_dump() for row in state.history if row.iteration == state.iteration],
                )
            if state.phase == "reflect":
                await self._reflect(state, train, worker, manager, gold)
            state.iteration += 1
            state.phase = "evaluate"
            if final_round:
                state.step = "done"
            self._checkpoint(state, run)

    async def _initial(
        self, state: RunState, train: list[Example], worker: Worker, manager: Manager
    ) -> list[Criterion]:
        chosen: list[Criterion] = list(self.init_criteria)[: self.config.n_criteria]
        judged: list[Criterion] = []
        if self.config.use_kb and len(chosen) < self.config.n_criteria:
            kept, judged = await self._retrieve(state, train, worker, room=self.config.n_criteria - len(chosen))
            chosen += kept
        missing = self.config.n_criteria - len(chosen)
        if missing > 0:
            self._tick("propose", 0, missing)
            chosen += await manager.propose(missing, chosen, [], attempts=3)
            self._tick("propose", missing, missing)
        spare = [c for c in judged if all(c.name != k.name for k in chosen)]
        if len(chosen) < self.config.n_criteria and spare:
            # the manager gave too few usable criteria: start from the best remaining KB candidates instead
            filler = spare[: self.config.n_criteria - len(chosen)]
            log.warning(
                "filling %d slot(s) with knowledge-base criteria at or below accuracy 0.5: %s",
                len(filler),
                ", ".join(c.name for c in filler),
            )
            chosen += filler
        return chosen

    async def _retrieve(
        self, state: RunState, train: list[Example], worker: Worker, room: int
    ) -> tuple[list[Criterion], list[Criterion]]:
        """The paper's retrieval: judge candidate KB criteria on the human examples, keep the most accurate > 0.5.

        Returns the kept criteria and every judged candidate, best first.
        """
        from critiq.knowledge import KnowledgeBase
        from critiq.knowledge.retrieval import prefilter, rank_by_accuracy

        kb = KnowledgeBase.load(self.config.kb_path)
        candidates = [
            e.to_criterion()
            for e in prefilter(
                kb,
                train,
                domains=self.config.domains or None,
                description=self.config.task,
                cap=self.config.kb_candidates,
            )
        ]
        before = worker.client.usage.requests
        await worker.judge(train, candidates, progress=lambda d, t: self._tick("retrieve", d, t))
        gold = {e.id: e.gold for e in train}
        stats = {c.name: criterion_stats(worker.verdicts(c, train), gold) for c in candidates}
        keep = self.config.kb_keep if self.config.kb_keep is not None else max(1, self.config.n_criteria // 2)
        names = rank_by_accuracy(stats, min_accuracy=0.5, top=min(keep, room))
        state.retrieval = {
            "knowledge_base_size": len(kb),
            "candidates": [c.name for c in candidates],
            "judgments": len(candidates) * len(train),
            "requests": worker.client.usage.requests - before,
            "kept": names,
            "accuracy": {n: s.accuracy for n, s in stats.items()},
        }
        ranked = sorted(candidates, key=lambda c: _score(stats[c.name]), reverse=True)
        by_name = {c.name: c for c in candidates}
        return [by_name[n] for n in names], ranked

    async def _evaluate(
        self, state: RunState, train: list[Example], worker: Worker, gold: dict[str, str | None]
    ) -> None:
        criteria = [slot.current for slot in state.slots]
        await worker.judge(train, criteria, progress=lambda d, t: self._tick(f"iteration {state.iteration}", d, t))
        for slot in state.slots:
            stats = criterion_stats(worker.verdicts(slot.current, train), gold)
            slot.current = slot.current.model_copy(update={"stats": stats})
            slot.status = self._status(stats)
            if slot.best is None or _score(stats) > _score(slot.best.stats):
                slot.best = slot.current
            state.history.append(
                HistoryRow(
                    iteration=state.iteration,
                    slot=slot.id,
                    name=slot.current.name,
                    description=slot.current.description,
                    origin=slot.current.origin,
                    accuracy=stats.accuracy,
                    coverage=stats.coverage,
                    judged=stats.judged,
                    n=stats.n,
                    status=slot.status,
                )
            )

    def _status(self, stats: CriterionStats) -> str:
        accuracy = stats.accuracy if stats.accuracy is not None else 0.0
        if accuracy >= self.config.high:
            return "good"
        if accuracy > self.config.low:
            return "mid"
        return "low"

    async def _reflect(
        self, state: RunState, train: list[Example], worker: Worker, manager: Manager, gold: dict[str, str | None]
    ) -> None:
        """Mid criteria: critique each wrong case, then rewrite. Low criteria: ban and replace."""
        by_id = {e.id: e for e in train}
        mid = [s for s in state.slots if s.status == "mid"]
        jobs: list[tuple[Slot, Example, Judgment]] = []
        for slot in mid:
            wrong = [
                j
                for j in worker.verdicts(slot.current, train)
                if j.verdict != "none" and j.verdict != gold.get(j.example_id)
            ]
            jobs += [(slot, by_id[j.example_id], j) for j in wrong[: self.config.max_critiques]]
        self._tick("reflect", 0, len(jobs))
        critiques = await asyncio.gather(*(manager.critique(s.current, e, j) for s, e, j in jobs))
        per_slot: dict[int, list[str]] = {}
        for (slot, _, _), text in zip(jobs, critiques, strict=True):
            if text:
                per_slot.setdefault(slot.id, []).append(text)
        rewrites = await asyncio.gather(
            *(manager.rewrite(s.current, s.current.stats or CriterionStats(), per_slot.get(s.id, [])) for s in mid)
        )
        for slot, new in zip(mid, rewrites, strict=True):
            if new is not None:
                slot.current = new
        low = [s for s in state.slots if s.status == "low"]
        if low:
            state.banned += [s.current for s in low]
            kept = [s.current for s in state.slots if s.status != "low"]
            fresh = await manager.propose(len(low), kept, state.banned)
            for slot, criterion in zip(low, fresh, strict=False):
                slot.current = criterion
                slot.best = None  # a replacement starts a new line; the banned one stays in the history
                slot.status = "new"

    # ------------------------------------------------------------------ end
    async def _finish(
        self, state: RunState, run: RunDir, train: list[Example], valid: Sequence[Example] | None, worker: Worker
    ) -> FlowResult:
        threshold = self.config.final_threshold if self.config.final_threshold is not None else self.config.high
        best = [s.best for s in state.slots if s.best is not None and s.best.stats is not None]
        best.sort(key=lambda c: _score(c.stats), reverse=True)
        final = [c for c in best if (c.stats.accuracy or 0.0) >= threshold]  # type: ignore[union-attr]
        if len(final) < self.config.min_final:
            log.warning(
                "%d criteria reached accuracy %.2f; keeping the best %d instead",
                len(final),
                threshold,
                self.config.min_final,
            )
            final = best[: self.config.min_final]
        vote, weighted = self._votes(final, train, worker)
        raw = [worker.raw(c, e) for c in final for e in train if isinstance(e, Pair)]  # order matters for pairs only
        result = FlowResult(
            criteria=final,
            vote=vote,
            weighted_vote=weighted,
            position_bias=position_bias(raw),
            history=state.history,
            retrieval=state.retrieval,
            run_dir=run.path,
            usage=self._total_usage(state),
            config=self.config.model_dump(),
            models={"manager": self.manager_client.config.model, "worker": worker.client.config.model},  # type: ignore[union-attr]
        )
        if valid:
            valid = list(valid)
            _check_examples(valid, "valid")
            await worker.judge(valid, final, progress=lambda d, t: self._tick("validate", d, t))
            gold = {e.id: e.gold for e in valid}
            result.valid_criteria = {c.name: criterion_stats(worker.verdicts(c, valid), gold) for c in final}
            result.valid_vote = self._votes(final, valid, worker)[0]
        write_outputs(result, run)
        return result

    def _votes(
        self, final: list[Criterion], examples: list[Example], worker: Worker
    ) -> tuple[CriterionStats, CriterionStats | None]:
        gold = [e.gold or "" for e in examples]
        rows = [[(worker.verdict(c, e) or _none(e.id, c.name)).verdict for c in final] for e in examples]
        vote = vote_stats([majority(r, self.config.margin) for r in rows], gold)
        return vote, weighted_vote_stats(vote_matrix(rows), gold, seed=self.config.seed)

    # ------------------------------------------------------------------ plumbing
    def _open_state(self, run: RunDir, train: list[Example], resume: bool) -> RunState:
        print_id = fingerprint(train, self.config.results_config())
        if run.exists():
            if not resume:
                raise CritiqError(
                    f"--out {run.path}: already holds a run; pass --resume to continue it or choose another directory"
                )
            state = run.load()
            if state.fingerprint != print_id:
                raise CritiqError(f"--resume {run.path}: the data or settings differ from the run being resumed")
            log.info("resuming %s at %s, iteration %d", run.path, state.step, state.iteration)
            recorded = run.recorded_usage()
            if recorded is not None and recorded.requests >= state.usage_before.requests:
                state.usage_before = recorded  # usage.json also counts requests sent after the last checkpoint
            return state
        run.path.mkdir(parents=True, exist_ok=True)
        state = RunState(fingerprint=print_id, config=self.config.model_dump())
        run.save(state)
        return state

    def _checkpoint(self, state: RunState, run: RunDir) -> None:
        total = self._total_usage(state)
        run.save(state.model_copy(update={"usage_before": total}))
        run.write("usage.json", total.model_dump())

    def _total_usage(self, state: RunState) -> Usage:
        """Spent by earlier attempts plus this one (manager and worker counted once when they share a counter)."""
        total = state.usage_before
        counters = [c.usage for c in (self.manager_client, self.worker_client) if c is not None]
        for counter in [u for i, u in enumerate(counters) if all(u is not v for v in counters[:i])]:
            total = total.add(counter)
        return total

    def _tick(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


def _none(example_id: str, name: str) -> Judgment:
    return Judgment(example_id=example_id, criterion=name, verdict="none", failed=True)


def _score(stats: CriterionStats | None) -> tuple[float, int]:
    if stats is None or stats.accuracy is None:
        return (-1.0, 0)
    return (stats.accuracy, stats.judged)


def _check_examples(examples: Sequence[Example], split: str) -> None:
    if not examples:
        raise CritiqError(f"{split}: no examples")
    unlabelled = [e.id for e in examples if e.gold is None]
    if unlabelled:
        raise CritiqError(f"{split}: example {unlabelled[0]!r} has no human label (mining needs labelled data)")
