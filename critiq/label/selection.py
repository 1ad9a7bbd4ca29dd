"""Which candidate to show next: random at first, then the one a quick model is least sure about.

After ``random_first`` labels a :class:`Ranker` orders a pool of candidates by how unsure it is: the n-gram
Bradley–Terry scorer retrained on the labels so far (:class:`ScorerRanker`), or the split among knowledge-base
criteria judged by the worker (:class:`CriteriaRanker`). Two picks in a row never share a prompt when another
candidate does not.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from critiq.data.models import Criterion, Pair
from critiq.judge.worker import Worker
from critiq.label.candidates import Candidate, Text
from critiq.scorer.base import Scorer
from critiq.scorer.ngram import NgramScorer

if TYPE_CHECKING:
    from critiq.llm.session import ModelSettings

RANDOM = "random"


@dataclass(frozen=True)
class Ranked:
    """A candidate with how unsure a model is about it (1 = a coin flip, 0 = certain) and why, in words."""

    candidate: Candidate
    unsure: float
    reason: str


class Ranker(Protocol):
    async def rank(self, pool: Sequence[Candidate], labels: Sequence[Pair]) -> list[Ranked]:
        """One :class:`Ranked` per candidate of ``pool``, in any order."""
        ...


class ScorerRanker:
    """Unsure = the Bradley–Terry probability of the left side is near 0.5; the scorer is refit when labels change."""

    def __init__(self, make_scorer: Callable[[], Scorer] = NgramScorer, *, seed: int = 0) -> None:
        self.make_scorer = make_scorer
        self.seed = seed
        self._fitted: tuple[str, Scorer] | None = None

    async def rank(self, pool: Sequence[Candidate], labels: Sequence[Pair]) -> list[Ranked]:
        return await asyncio.to_thread(self.rank_now, pool, labels)

    def rank_now(self, pool: Sequence[Candidate], labels: Sequence[Pair]) -> list[Ranked]:
        """:meth:`rank` without a thread (for scripts)."""
        if not pool:
            return []
        scorer = self.scorer(labels)
        texts = [text for c in pool for text in (c.left.full, c.right.full)]
        scores = scorer.score(texts)
        ranked = []
        for index, candidate in enumerate(pool):
            p = _sigmoid(float(scores[2 * index]) - float(scores[2 * index + 1]))
            ranked.append(Ranked(candidate, 1.0 - abs(2.0 * p - 1.0), f"scorer unsure: {max(p, 1.0 - p):.2f}"))
        return ranked

    def scorer(self, labels: Sequence[Pair]) -> Scorer:
        """A scorer trained on ``labels`` (all of them: there is nothing to hold out), cached while they stay."""
        digest = hashlib.sha256()
        for pair in labels:
            digest.update(f"{pair.id}\x00{pair.preferred}\x00".encode())
        key = digest.hexdigest()
        if self._fitted is None or self._fitted[0] != key:
            scorer = self.make_scorer()
            scorer.fit(labels, valid_fraction=0.0, seed=self.seed)
            self._fitted = (key, scorer)
        return self._fitted[1]


class CriteriaRanker:
    """Unsure = knowledge-base criteria judged by the worker split evenly between the two sides.

    The worker keeps every judgment, so a candidate that stays in the pool is judged only once.
    """

    def __init__(self, worker: Worker, criteria: Sequence[Criterion]) -> None:
        if not criteria:
            raise ValueError("criteria= is empty")
        self.worker = worker
        self.criteria = list(criteria)

    async def rank(self, pool: Sequence[Candidate], labels: Sequence[Pair]) -> list[Ranked]:
        pairs = [candidate.as_pair() for candidate in pool]
        await self.worker.judge(pairs, self.criteria)
        ranked = []
        for candidate, pair in zip(pool, pairs, strict=True):
            verdicts = [j.verdict for c in self.criteria if (j := self.worker.verdict(c, pair)) is not None]
            a, b = verdicts.count("A"), verdicts.count("B")
            unsure = 2.0 * min(a, b) / (a + b) if a + b else 0.0
            ranked.append(Ranked(candidate, unsure, f"criteria split {a}–{b} (of {len(self.criteria)})"))
        return ranked


@contextmanager
def open_criteria_ranker(
    texts: Sequence[Text], settings: ModelSettings, *, task: str, count: int, language: str = "en", seed: int = 0
) -> Iterator[CriteriaRanker]:
    """A :class:`CriteriaRanker` on ``count`` knowledge-base criteria for ``task``, its worker on ``settings``' model
    (clients opened here, closed on exit)."""
    from critiq.errors import CritiqError
    from critiq.label.candidates import draw_candidates
    from critiq.llm.session import open_clients
    from critiq.prompts import Prompts

    sample = [c.as_pair() for c in draw_candidates(list(texts)[:64], seed=seed)]
    criteria = knowledge_criteria(sample, task=task, count=count)
    if not criteria:
        raise CritiqError("rank_by='criteria': the knowledge base has no criterion for pairs")
    with open_clients(settings) as clients:
        yield CriteriaRanker(Worker(clients.worker, Prompts(language), seed=seed), criteria)


class Selector:
    """Picks the next candidate: ``random_first`` random picks, then the most unsure of the first ``pool_size``."""

    def __init__(self, ranker: Ranker | None = None, *, random_first: int = 8, pool_size: int = 200) -> None:
        if random_first < 0:
            raise ValueError(f"random_first= must be >= 0, got {random_first}")
        if pool_size < 1:
            raise ValueError(f"pool_size= must be >= 1, got {pool_size}")
        self.ranker = ranker
        self.random_first = random_first
        self.pool_size = pool_size

    async def choose(
        self, available: Sequence[Candidate], labels: Sequence[Pair], last_prompts: frozenset[str] = frozenset()
    ) -> tuple[Candidate, str] | None:
        """The candidate to show and why it was picked; None when nothing is available.

        ``available`` is already in random order; ``last_prompts`` are the prompts of the previous pick.
        """
        if not available:
            return None
        if self.ranker is None or len(labels) < self.random_first:
            return _diverse([Ranked(c, 0.0, RANDOM) for c in available], last_prompts)
        ranked = await self.ranker.rank(available[: self.pool_size], labels)
        ranked.sort(key=lambda r: -r.unsure)  # stable: equal doubt keeps the random order
        return _diverse(ranked, last_prompts)


def _diverse(ranked: Sequence[Ranked], last_prompts: frozenset[str]) -> tuple[Candidate, str]:
    for item in ranked:
        if not item.candidate.prompts & last_prompts:
            return item.candidate, item.reason
    return ranked[0].candidate, ranked[0].reason


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def knowledge_criteria(sample: Sequence[Pair], *, task: str | None, count: int) -> list[Criterion]:
    """The ``count`` knowledge-base criteria that best fit ``sample`` and ``task`` (by domain and keywords)."""
    from critiq.knowledge import KnowledgeBase, prefilter

    return [entry.to_criterion() for entry in prefilter(KnowledgeBase.load(), sample, description=task, cap=count)]
