"""Active selection: random first, then the scorer's least sure pair, or the pair the KB criteria split on."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, Pair
from critiq.judge.answers import PairAnswer
from critiq.judge.worker import Worker
from critiq.label import Candidate, CriteriaRanker, ScorerRanker, Selector, Text, knowledge_criteria
from tests.fakes import ScriptedClient, user_text

FENCED = re.compile(r"<<<TEXT_[AB]-\w+\n(.*?)\nTEXT_[AB]-\w+>>>", re.DOTALL)


def _candidate(index: int, left: str, right: str, prompt: str | None = None) -> Candidate:
    return Candidate(Text(f"l{index}", left, prompt), Text(f"r{index}", right, prompt))


def _labels(n: int) -> list[Pair]:
    """Labels where the text with more 'good' words wins."""
    return [
        Pair(id=f"x{i}", a="good " * (i % 3 + 2) + f"alpha {i}", b="bad " * (i % 3 + 2) + f"beta {i}", preferred="a")
        for i in range(n)
    ]


def test_random_before_enough_labels_then_the_scorer_least_sure_pair() -> None:
    pool = [
        _candidate(0, "good good good", "bad bad bad"),
        _candidate(1, "good bad", "bad good"),
        _candidate(2, "bad", "good"),
    ]
    selector = Selector(ScorerRanker(), random_first=8)
    early = asyncio.run(selector.choose(pool, _labels(7)))
    assert early == (pool[0], "random")  # the pool's own (random) order
    labels = _labels(12)
    candidate, reason = asyncio.run(selector.choose(pool, labels))
    scorer = ScorerRanker().scorer(labels)
    doubt = []
    for c in pool:
        left, right = scorer.score([c.left.full, c.right.full])
        doubt.append(abs(1.0 / (1.0 + math.exp(-(float(left) - float(right)))) - 0.5))
    assert candidate == pool[doubt.index(min(doubt))]
    assert re.fullmatch(r"scorer unsure: 0\.\d\d", reason)
    assert reason == f"scorer unsure: {0.5 + min(doubt):.2f}"


def test_no_two_picks_in_a_row_share_a_prompt_when_another_is_available() -> None:
    pool = [
        _candidate(0, "a one", "a two", "same"),
        _candidate(1, "b one", "b two", "same"),
        _candidate(2, "c", "d", "other"),
    ]
    selector = Selector(None, random_first=0)
    assert asyncio.run(selector.choose(pool, [], frozenset({"same"}))) == (pool[2], "random")
    assert asyncio.run(selector.choose(pool[:2], [], frozenset({"same"}))) == (pool[0], "random")  # no other choice
    assert asyncio.run(selector.choose([], [])) is None


def _by_marks(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> dict[str, str]:
    """Criterion NAME prefers the text that holds the word good-NAME."""
    assert schema is PairAnswer
    prompt = user_text(messages)
    name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
    first, second = FENCED.findall(prompt)[:2]
    verdict = "A" if f"good-{name}" in first else "B" if f"good-{name}" in second else "none"
    return {"rationale": "marked", "verdict": verdict}


def test_criteria_ranker_picks_the_pair_the_criteria_split_on_and_judges_each_pair_once() -> None:
    names = ["c1", "c2", "c3", "c4"]
    criteria = [Criterion(name=n, description=f"prefer {n}") for n in names]
    pool = [
        _candidate(0, "good-c1 good-c2 good-c3 good-c4", "plain"),
        _candidate(1, "good-c1 good-c2", "good-c3 good-c4"),
        _candidate(2, "good-c1 good-c2 good-c3", "good-c4"),
    ]
    client = ScriptedClient(_by_marks)
    selector = Selector(CriteriaRanker(Worker(client, seed=1), criteria), random_first=0, pool_size=3)  # type: ignore[arg-type]
    candidate, reason = asyncio.run(selector.choose(pool, []))
    assert candidate == pool[1] and reason == "criteria split 2–2 (of 4)"
    assert len(client.calls) == 3 * 4
    ranked = asyncio.run(CriteriaRanker(selector.ranker.worker, criteria).rank(pool[::-1], []))  # type: ignore[union-attr]
    assert len(client.calls) == 12  # every judgment was kept
    assert {r.candidate.id: r.reason for r in ranked}["l2|r2"] == "criteria split 3–1 (of 4)"


def test_knowledge_criteria_fit_the_sample() -> None:
    sample = [Pair(id="p", a="def f(x):\n    return x + 1\n", b="def g(y):\n    return y\n")]
    criteria = knowledge_criteria(sample, task="Python code", count=3)
    assert len(criteria) == 3
    assert all(c.description for c in criteria)
