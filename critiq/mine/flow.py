"""CritiQ Flow: mine quality criteria from a few human-labelled examples.

As in the paper's reference code: knowledge-base retrieval (up to ``n_criteria`` criteria above the low threshold,
ties broken at random), a warm-up on every human example when criteria must be proposed, then evaluate → keep good /
critique every wrong case and rewrite mid / ban and replace low, and the final criteria are the best versions that
pass the threshold. The differences (each stated in docs/concepts.md): a criterion text is judged once per example,
the manager's requests are independent (the warm-up answers travel as notes instead of a chat history), worker and
manager outputs are schema-constrained and validated, failed judgments are asked again rather than counted wrong,
and the run directory holds a checkpoint after every step but never a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair
from critiq.errors import BudgetExceeded, CritiqError
from critiq.judge.metrics import criterion_stats, position_bias
from critiq.judge.modes import SwapMode
from critiq.judge.vote import majority, vote_matrix, vote_stats, weighted_vote_stats
from critiq.judge.worker import Worker
from critiq.llm import tokens
from critiq.llm.protocol import ChatClient
from critiq.llm.sync import run_sync
from critiq.llm.usage import Usage
from critiq.lock import OutputLock
from critiq.mine.candidates import kb_candidates
from critiq.mine.config import FlowConfig, JudgeMode
from critiq.mine.evidence import EvidenceFitter, context_window
from critiq.mine.manager import Manager
from critiq.mine.result import FlowResult, write_outputs
from critiq.mine.state import data_digest, fingerprint, identity_changes, settings_digest
from critiq.prompts import Prompts
from critiq.rundir.flow import HistoryRow, PositionBias, Retrieval, RunState, Slot, Status
from critiq.rundir.flow_dir import RunDir

__all__ = ["CritiQFlow", "FlowConfig", "FlowRun", "JudgeMode", "SwapMode"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class FlowRun:
    """One run of a flow: its checkpoint, directory, data, clients, workers, manager and evidence fit.

    The flow keeps none of it, so one :class:`CritiQFlow` can run twice at once (two ``afit`` calls, each with its
    own ``run_dir``); runs that share clients share their usage counters.
    """

    state: RunState
    run: RunDir
    train: list[Example]
    manager_client: ChatClient
    worker_client: ChatClient
    worker: Worker
    scout: Worker  # retrieval judges each knowledge-base candidate on its own, whatever the evaluation mode
    manager: Manager
    fitter: EvidenceFitter
    context_source: str
    gold: dict[str, str | None]  # the human label of each training example


class CritiQFlow:
    """Mine criteria: ``CritiQFlow(manager=..., worker=...).fit(pairs)`` → :class:`FlowResult`.

    ``manager`` and ``worker`` are chat clients such as :class:`~critiq.llm.LLMClient` (maybe the same). Without them,
    ``fit`` opens clients from default settings (the embedded local model: no model is named). The flow holds its
    settings only: each run's state is a :class:`FlowRun`, so runs of one flow do not disturb each other.
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
    async def afit(
        self,
        train: Sequence[Example],
        valid: Sequence[Example] | None = None,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ) -> FlowResult:
        """Run the flow on ``train`` (criteria scored on ``valid`` too when given); :meth:`fit` is its blocking form."""
        if self.manager_client is None or self.worker_client is None:
            raise CritiqError("CritiQFlow.afit needs manager= and worker= clients (fit() opens default ones)")
        return await self._afit(self.manager_client, self.worker_client, train, valid, run_dir, resume)

    def fit(
        self,
        train: Sequence[Example],
        valid: Sequence[Example] | None = None,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ) -> FlowResult:
        """Run the flow (blocking; also inside a notebook's event loop); without clients it opens the default ones."""
        if self.manager_client is not None and self.worker_client is not None:
            return run_sync(self._afit(self.manager_client, self.worker_client, train, valid, run_dir, resume))
        from critiq.llm.session import open_clients

        with open_clients() as clients:
            return run_sync(self._afit(clients.manager, clients.worker, train, valid, run_dir, resume))

    async def _afit(
        self,
        manager_client: ChatClient,
        worker_client: ChatClient,
        train: Sequence[Example],
        valid: Sequence[Example] | None,
        run_dir: str | Path | None,
        resume: bool,
    ) -> FlowResult:
        train = list(train)
        _check_examples(train, "train")
        run = RunDir(run_dir or tempfile.mkdtemp(prefix="critiq-run-"))
        with OutputLock(run.path):  # one process per run directory: a second one stops here, having written nothing
            state = self._open_state(run, train, resume, manager_client, worker_client)
            flow = self._start(state, run, train, manager_client, worker_client)
            return await self._execute(flow, valid)

    def _start(
        self,
        state: RunState,
        run: RunDir,
        train: list[Example],
        manager_client: ChatClient,
        worker_client: ChatClient,
    ) -> FlowRun:
        config = self.config
        worker = Worker(worker_client, self.prompts, swap=config.swap, seed=config.seed, mode=config.judge)
        scout = worker
        if config.judge != "per-criterion":
            scout = Worker(worker_client, self.prompts, swap=config.swap, seed=config.seed)
        for key, judgment in run.judgments():
            (worker if "@" in key or scout is worker else scout).load(key, judgment)
        context, source = context_window(manager_client.config, config.manager_context)
        fitter = EvidenceFitter(
            manager_client.config.model,
            context,
            manager_client.config.max_tokens,
            seed=config.seed,
            counter=tokens.counter_for(manager_client.config),
        )
        fitter.restore(state.evidence)
        manager = Manager(
            manager_client,
            self.prompts,
            task=config.task,
            max_tokens=manager_client.config.max_tokens,
            temperature=config.manager_temperature,
            fitter=fitter,
            seed=config.seed,
        )
        manager.evidence = list(state.notes)
        return FlowRun(
            state=state,
            run=run,
            train=train,
            manager_client=manager_client,
            worker_client=worker_client,
            worker=worker,
            scout=scout,
            manager=manager,
            fitter=fitter,
            context_source=source,
            gold={e.id: e.gold for e in train},
        )

    async def _execute(self, flow: FlowRun, valid: Sequence[Example] | None) -> FlowResult:
        appender = flow.run.appender()
        written = 0

        def on_judgment(key: str, judgment: Judgment) -> None:
            nonlocal written
            appender.write({"key": key, "judgment": judgment.model_dump()})
            written += 1
            if written % 10 == 0:  # keep usage.json close to the truth should the process be killed
                flow.run.write("usage.json", self._total_usage(flow))

        flow.worker.on_judgment = flow.scout.on_judgment = on_judgment
        try:
            await self._run(flow)
            result = await self._finish(flow, valid)
        except BudgetExceeded:
            self._checkpoint(flow)
            raise
        finally:
            appender.close()
            flow.run.write("usage.json", self._total_usage(flow))
        log.info(
            "flow finished: %d criteria passed, %d requests, %d cache hits",
            len(result.criteria),
            result.usage.requests,
            result.usage.cache_hits,
        )
        return result

    # ------------------------------------------------------------------ steps
    async def _run(self, flow: FlowRun) -> None:
        state = flow.state
        if state.step == "start":
            initial = await self._initial(flow)
            if not initial:
                raise CritiqError("no initial criteria: the manager proposed none and none were given or retrieved")
            state.slots = [Slot(id=i, current=c) for i, c in enumerate(initial)]
            state.step = "iterating"
            self._checkpoint(flow)
        last = self.config.rounds
        while state.step == "iterating":
            final_round = state.iteration >= last
            if state.phase == "evaluate":
                await self._evaluate(flow)
                state.phase = "done" if final_round else "reflect"
                self._checkpoint(flow)
                self._write_iteration(flow)
            if state.phase == "reflect":
                await self._reflect(flow)
                self._write_iteration(flow)  # now with the wrong cases critiqued
            if final_round:
                state.step = "done"
            else:
                state.iteration += 1
                state.phase = "evaluate"
            self._checkpoint(flow)

    def _write_iteration(self, flow: FlowRun) -> None:
        state = flow.state
        rows = [row for row in state.history if row.iteration == state.iteration]
        flow.run.write(f"iterations/iteration_{state.iteration}.json", rows)

    async def _initial(self, flow: FlowRun) -> list[Criterion]:
        n = self.config.n_criteria
        chosen: list[Criterion] = list(self.init_criteria)[:n]
        if self.config.retrieves(len(chosen)):
            chosen += await self._retrieve(flow, room=n - len(chosen), taken=chosen)
        missing = n - len(chosen)
        if missing > 0:  # the warm-up feeds the proposals: skipped when every slot is given or retrieved
            await self._warm_up(flow)
            self._tick("propose", 0, missing)
            chosen += await flow.manager.propose(missing, chosen, [], attempts=3)
            self._tick("propose", missing, missing)
        return chosen

    async def _warm_up(self, flow: FlowRun) -> None:
        """The manager reads every human example once, in the order the workers see it (at first need)."""
        state = flow.state
        if state.warmed_up:
            return
        state.notes = await flow.manager.warm_up(
            flow.train, swapped=flow.worker.seeded_swap, progress=lambda d, t: self._tick("warm-up", d, t)
        )
        state.warmed_up = True
        self._checkpoint(flow)

    async def _retrieve(self, flow: FlowRun, room: int, taken: Sequence[Criterion]) -> list[Criterion]:
        """The paper's retrieval: judge candidate KB criteria on the human examples; keep up to ``room`` (at most
        ``kb_keep``) whose accuracy is above the low threshold, most accurate first, ties broken at random."""
        from critiq.knowledge.retrieval import rank_by_accuracy

        train, scout, gold = flow.train, flow.scout, flow.gold
        kb_size, candidates = kb_candidates(self.config, train, exclude={c.name for c in taken})
        before = scout.client.usage.requests
        await self._judge(scout, train, candidates, "retrieve")
        stats = {c.name: criterion_stats(scout.verdicts(c, train), gold) for c in candidates}
        failed = {c.name: _failures(scout.verdicts(c, train)) for c in candidates}
        unjudged = [c.name for c in candidates if not self._answered(failed[c.name], len(train))]
        keep = self.config.kb_keep if self.config.kb_keep is not None else self.config.n_criteria
        rated = {name: s for name, s in stats.items() if name not in unjudged}
        kept = rank_by_accuracy(rated, min_accuracy=self.config.low, top=min(keep, room), seed=self.config.seed)
        flow.state.retrieval = Retrieval(
            knowledge_base_size=kb_size,
            candidates=[c.name for c in candidates],
            judgments=len(candidates) * len(train),
            requests=scout.client.usage.requests - before,
            threshold=self.config.low,
            kept=kept,
            accuracy={n: s.decided_accuracy for n, s in stats.items()},
            failed={n: f for n, f in failed.items() if f},
            unjudged=unjudged,
        )
        by_name = {c.name: c for c in candidates}
        return [by_name[n].model_copy(update={"stats": stats[n]}) for n in kept]

    async def _judge(self, worker: Worker, examples: list[Example], criteria: Sequence[Criterion], stage: str) -> None:
        """Judge every missing cell; cells whose request failed are asked once more straight away."""
        await worker.judge(examples, criteria, progress=lambda d, t: self._tick(stage, d, t))
        again = len(worker.missing(examples, criteria))
        if again:
            log.info("%s: asking %d failed judgments again", stage, again)
            await worker.judge(examples, criteria, progress=lambda d, t: self._tick(f"{stage} (again)", d, t))

    def _answered(self, failed: int, n: int) -> bool:
        return n == 0 or (n - failed) / n >= self.config.min_success

    async def _evaluate(self, flow: FlowRun) -> None:
        state, train, worker, gold = flow.state, flow.train, flow.worker, flow.gold
        criteria = [slot.current for slot in state.slots]
        await self._judge(worker, train, criteria, f"iteration {state.iteration}")
        for slot in state.slots:
            judgments = worker.verdicts(slot.current, train)
            stats = criterion_stats(judgments, gold)
            failed = _failures(judgments)
            slot.current = slot.current.model_copy(update={"stats": stats})
            slot.status = self._status(stats, failed, len(train))
            if slot.status != "unjudged" and (slot.best is None or _score(stats) > _score(slot.best.stats)):
                slot.best = slot.current
            state.history.append(
                HistoryRow(
                    iteration=state.iteration,
                    slot=slot.id,
                    name=slot.current.name,
                    description=slot.current.description,
                    origin=slot.current.origin,
                    accuracy=stats.accuracy,
                    decided_accuracy=stats.decided_accuracy,
                    coverage=stats.coverage,
                    judged=stats.judged,
                    n=stats.n,
                    status=slot.status,
                    failed=failed,
                )
            )

    def _status(self, stats: CriterionStats, failed: int, n: int) -> Status:
        if not self._answered(failed, n):
            return "unjudged"  # too few answers to rate it: asked again next round, never banned for it
        accuracy = stats.decided_accuracy if stats.decided_accuracy is not None else 0.0  # the reference's measure
        if accuracy >= self.config.high:
            return "good"
        if accuracy > self.config.low:
            return "mid"
        return "low"

    async def _reflect(self, flow: FlowRun) -> None:
        """Mid criteria: critique every wrong case, then rewrite. Low criteria: ban and replace."""
        state, manager = flow.state, flow.manager
        mid = [s for s in state.slots if s.status == "mid"]
        low = [s for s in state.slots if s.status == "low"]
        need = len(low) + self.config.n_criteria - len(state.slots)
        if not mid and need <= 0:
            return
        await self._warm_up(flow)
        by_id = {e.id: e for e in flow.train}
        jobs: list[tuple[Slot, Example, Judgment]] = []
        for slot in mid:
            picked = self._wrong_cases(flow, slot)
            jobs += [(slot, by_id[j.example_id], j) for j in picked]
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
        if need > 0:
            await self._replace(state, low, need, manager)

    def _wrong_cases(self, flow: FlowRun, slot: Slot) -> list[Judgment]:
        """Every case the criterion got wrong, or a seeded random sample of ``max_critiques`` of them."""
        state, gold = flow.state, flow.gold
        wrong = [
            j
            for j in flow.worker.verdicts(slot.current, flow.train)
            if not j.failed and j.verdict != "none" and j.verdict != gold.get(j.example_id)
        ]
        cap = self.config.max_critiques
        picked = wrong
        if cap is not None and len(wrong) > cap:
            rng = random.Random(f"{self.config.seed}:{state.iteration}:{slot.id}")
            chosen = set(rng.sample(range(len(wrong)), cap))
            picked = [j for i, j in enumerate(wrong) if i in chosen]
        for row in state.history:
            if row.iteration == state.iteration and row.slot == slot.id:
                row.wrong, row.critiqued = len(wrong), len(picked)
        if len(picked) < len(wrong):
            log.info("%s: critiqued %d of %d wrong cases", slot.current.name, len(picked), len(wrong))
        return picked

    async def _replace(self, state: RunState, low: list[Slot], need: int, manager: Manager) -> None:
        """Ban the low criteria and fill their slots (and any empty one) with new proposals.

        A low slot the manager found no replacement for is retired: a banned criterion never stays in play.
        """
        banned_names = {c.name for c in state.banned}
        state.banned += [s.current for s in low if s.current.name not in banned_names]
        kept = [s.current for s in state.slots if s.status != "low"]
        fresh = await manager.propose(need, kept, state.banned)
        if len(fresh) < need:
            log.warning(
                "the manager gave %d of %d new criteria: %d slot(s) left empty", len(fresh), need, need - len(fresh)
            )
        for slot in low:
            if fresh:
                slot.current = fresh.pop(0)
                slot.best = None  # a replacement starts a new line; the banned one stays in the history
                slot.status = "new"
            else:
                state.slots.remove(slot)
                state.retired.append(slot)
        next_id = 1 + max(s.id for s in [*state.slots, *state.retired])
        for offset, criterion in enumerate(fresh):
            state.slots.append(Slot(id=next_id + offset, current=criterion))

    # ------------------------------------------------------------------ end
    async def _finish(self, flow: FlowRun, valid: Sequence[Example] | None) -> FlowResult:
        state, run, train, worker = flow.state, flow.run, flow.train, flow.worker
        self._sync_evidence(flow)
        threshold = self.config.threshold
        best = [s.best for s in [*state.slots, *state.retired] if s.best is not None and s.best.stats is not None]
        best.sort(key=lambda c: _score(c.stats), reverse=True)
        final = [c for c in best if _score(c.stats)[0] >= threshold]
        below = [c for c in best if _score(c.stats)[0] < threshold][: self.config.show_below]
        voters = final or below
        if not final:
            log.warning(
                "no criterion reached decided accuracy %.2f; the best %d below it are listed as such",
                threshold,
                len(below),
            )
        vote, weighted = self._votes(voters, train, worker)
        raw = [worker.raw(c, e) for c in voters for e in train if isinstance(e, Pair)]  # order matters for pairs only
        result = FlowResult(
            criteria=final,
            passed=bool(final),
            threshold=threshold,
            below_threshold=below,
            failures={c.name: _failures(worker.verdicts(c, train)) for c in voters},
            vote=vote,
            weighted_vote=weighted,
            position_bias=PositionBias.model_validate(position_bias(raw)),
            history=state.history,
            retrieval=state.retrieval,
            evidence=state.evidence,
            run_dir=run.path,
            usage=self._total_usage(flow),
            config=self.config.model_dump(),
            models={"manager": flow.manager_client.config.model, "worker": worker.client.config.model},
            task=self.config.task,
            domains=_domains(train, self.config.domains),
            data_kind="pairs" if all(isinstance(e, Pair) for e in train) else "points",
        )
        if valid:
            valid = list(valid)
            _check_examples(valid, "valid")
            await self._judge(worker, valid, voters, "validate")
            gold = {e.id: e.gold for e in valid}
            result.valid_criteria = {c.name: criterion_stats(worker.verdicts(c, valid), gold) for c in voters}
            result.valid_vote = self._votes(voters, valid, worker)[0]
            result.usage = self._total_usage(flow)  # the validation requests count too
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
    def _identity(self, train: list[Example], manager_client: ChatClient, worker_client: ChatClient) -> dict[str, str]:
        """What a resumed run must share with the run it continues."""
        initial = hashlib.sha256("\n".join(c.text for c in self.init_criteria).encode()).hexdigest()[:16]
        return {
            "data": data_digest(train),
            "initial": initial,
            "settings": settings_digest(self.config.results_config()),
            "manager_model": manager_client.config.model,
            "worker_model": worker_client.config.model,
            "prompts": self.prompts.digest(),
            "language": self.config.language,
        }

    def _open_state(
        self, run: RunDir, train: list[Example], resume: bool, manager_client: ChatClient, worker_client: ChatClient
    ) -> RunState:
        identity = self._identity(train, manager_client, worker_client)
        print_id = fingerprint(identity)
        if run.exists():
            if not resume:
                raise CritiqError(
                    f"run_dir={run.path}: already holds a run; pass resume=True to continue it or choose another "
                    "directory"
                )
            state = run.load()
            if state.fingerprint != print_id:
                changes = identity_changes(state.identity, identity, state.config, self.config.model_dump())
                what = "; ".join(changes) if state.identity else "it was written before critiq recorded what changed"
                raise CritiqError(
                    f"resume=True {run.path}: the data or settings differ from the run being resumed ({what})"
                )
            log.info("resuming %s at %s, iteration %d", run.path, state.step, state.iteration)
            recorded = run.recorded_usage()
            if recorded is not None and recorded.requests >= state.usage_before.requests:
                state.usage_before = recorded  # usage.json also counts requests sent after the last checkpoint
            return state
        run.path.mkdir(parents=True, exist_ok=True)
        run.start_over()  # what a run that did no work left behind (failed judgments) is not reloaded
        state = RunState(fingerprint=print_id, identity=identity, config=self.config.model_dump())
        run.save(state)
        return state

    def _sync_evidence(self, flow: FlowRun) -> None:
        if flow.fitter.requests:
            flow.state.evidence = flow.fitter.summary(len(flow.state.notes), flow.context_source)

    def _checkpoint(self, flow: FlowRun) -> None:
        self._sync_evidence(flow)
        total = self._total_usage(flow)
        flow.run.save(flow.state.model_copy(update={"usage_before": total}))
        flow.run.write("usage.json", total)

    def _total_usage(self, flow: FlowRun) -> Usage:
        """Spent by earlier attempts plus this one (manager and worker counted once when they share a counter)."""
        total = flow.state.usage_before
        counters = [flow.manager_client.usage, flow.worker_client.usage]
        for counter in [u for i, u in enumerate(counters) if all(u is not v for v in counters[:i])]:
            total = total.add(counter)
        return total

    def _tick(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


def _none(example_id: str, name: str) -> Judgment:
    return Judgment(example_id=example_id, criterion=name, verdict=None, failed=True)


def _failures(judgments: Sequence[Judgment]) -> int:
    return sum(j.failed for j in judgments)


def _score(stats: CriterionStats | None) -> tuple[float, int]:
    if stats is None or stats.decided_accuracy is None:
        return (-1.0, 0)
    return (stats.decided_accuracy, stats.judged)


def _domains(examples: Sequence[Example], given: Sequence[str]) -> list[str]:
    from critiq.knowledge.retrieval import example_texts, infer_domains

    tags = {t.strip().lower() for t in given if t.strip()} | {e.domain.lower() for e in examples if e.domain}
    return sorted(tags | infer_domains(example_texts(examples))) or ["general"]


def _check_examples(examples: Sequence[Example], split: str) -> None:
    if not examples:
        raise CritiqError(f"{split}: no examples")
    unlabelled = [e.id for e in examples if e.gold is None]
    if unlabelled:
        raise CritiqError(f"{split}: example {unlabelled[0]!r} has no human label (mining needs labelled data)")
