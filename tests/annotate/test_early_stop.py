"""The early-stopped vote gives the full vote's label, asks what one-at-a-time asking asks, and no more."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from critiq.annotate.early_stop import (
    asking_order,
    difference,
    expected_asked,
    sequential_asked,
    settled,
    stopped_vote,
    wave,
)
from critiq.annotate.pair_judge import PerCriterionJudge
from critiq.data.models import Criterion, CriterionStats, Pair
from critiq.judge.vote import majority
from critiq.judge.worker import Worker
from tests.fakes import ScriptedClient, user_text

VERDICTS = st.sampled_from(["A", "B", "none"])
ROWS = st.lists(VERDICTS, min_size=1, max_size=12)
MARGINS = st.integers(min_value=0, max_value=4)


def every_completion(prefix: list[str], total: int, margin: int) -> set[str | None]:
    """The labels of every way the rest of a row could fall (brute force, for small rows)."""
    labels: set[str | None] = set()

    def walk(row: list[str]) -> None:
        if len(row) == total:
            labels.add(majority(row, margin))
            return
        for verdict in ("A", "B", "none"):
            walk([*row, verdict])

    walk(prefix)
    return labels


@given(row=st.lists(VERDICTS, min_size=1, max_size=7), margin=MARGINS)
@settings(max_examples=300, deadline=None)
def test_settled_means_every_completion_gives_one_label(row: list[str], margin: int) -> None:
    for asked in range(len(row) + 1):
        prefix = row[:asked]
        labels = every_completion(prefix, len(row), margin)
        assert settled(difference(prefix), len(row) - asked, margin) == (len(labels) == 1)


@given(row=ROWS, margin=MARGINS)
@settings(max_examples=1000, deadline=None)
def test_waves_ask_exactly_what_sequential_asking_asks_and_keep_the_label(row: list[str], margin: int) -> None:
    asked = stopped_vote(row, margin)
    assert asked == sequential_asked(row, margin) <= len(row)
    assert majority(row[:asked], margin) == majority(row, margin)
    # a wave never overshoots: before the last wave the label was not settled yet
    assert settled(difference(row[:asked]), len(row) - asked, margin)
    if asked:
        assert not settled(difference(row[: asked - 1]), len(row) - asked + 1, margin)


@given(diff=st.integers(-8, 8), remaining=st.integers(0, 10), margin=MARGINS)
def test_a_wave_is_the_fewest_verdicts_that_could_settle(diff: int, remaining: int, margin: int) -> None:
    size = wave(diff, remaining, margin)
    assert (size == 0) == settled(diff, remaining, margin)

    def could_settle(after: int) -> bool:  # by brute force over the verdicts the next `after` criteria could give
        rows: set[int] = {diff}
        for _ in range(after):
            rows = {d + step for d in rows for step in (-1, 0, 1)}
        return any(settled(d, remaining - after, margin) for d in rows)

    assert could_settle(size)
    assert not any(could_settle(fewer) for fewer in range(size))


def _matrix_client(matrix: dict[str, dict[str, str]]) -> ScriptedClient:
    """Answers each (pair, criterion) request with the verdict the matrix holds for it."""

    def responder(messages: list[dict[str, str]], schema: object) -> dict[str, str]:
        text = user_text(messages)
        pair_id = next(pid for pid in matrix if f"TEXT OF {pid}." in text)
        name = next(n for n in matrix[pair_id] if f'Criterion "{n}"' in text)
        return {"rationale": "r", "verdict": matrix[pair_id][name]}

    return ScriptedClient(responder)


@given(
    rows=st.lists(st.lists(VERDICTS, min_size=5, max_size=5), min_size=1, max_size=6),
    margin=st.integers(0, 2),
    accuracies=st.lists(st.one_of(st.none(), st.floats(0.3, 1.0)), min_size=5, max_size=5),
)
@settings(max_examples=60, deadline=None)
def test_the_judge_labels_like_the_full_vote_with_fewer_requests(
    rows: list[list[str]], margin: int, accuracies: list[float | None]
) -> None:
    criteria = [
        Criterion(
            name=f"crit{i}",
            description=f"criterion number {i}",
            stats=CriterionStats(accuracy=a) if a is not None else None,
        )
        for i, a in enumerate(accuracies)
    ]
    order = asking_order(criteria)
    pairs = [Pair(id=f"p{i}", a=f"TEXT OF p{i}. one", b=f"TEXT OF p{i}. two") for i in range(len(rows))]
    matrix = {p.id: {c.name: v for c, v in zip(criteria, row, strict=True)} for p, row in zip(pairs, rows, strict=True)}
    client = _matrix_client(matrix)
    judge = PerCriterionJudge(Worker(client, swap="none"), criteria, margin=margin, early_stop=True)
    full = PerCriterionJudge(Worker(_matrix_client(matrix), swap="none"), criteria, margin=margin, early_stop=False)
    for pair, row in zip(pairs, rows, strict=True):
        early = asyncio.run(judge(pair))
        whole = asyncio.run(full(pair))
        assert whole.asked == len(criteria)
        asked = [v for v in early.verdicts.values() if v is not None]
        assert majority(asked, margin) == majority(row, margin) == majority(list(whole.verdicts.values()), margin)
        in_order = [row[i] for i in order]
        assert early.asked == sequential_asked(in_order, margin)
        # the criteria asked are the most accurate ones, in that order
        assert {criteria[i].name for i in order[: early.asked]} == {n for n, v in early.verdicts.items() if v}
    assert client.usage.requests == sum(
        sequential_asked([row[i] for i in order], margin) for row in rows
    )  # one request per asked criterion
    assert not judge.worker.memo  # every pair's judgments were dropped once it was done


def test_asking_order_puts_measured_accuracy_first_and_unknown_last() -> None:
    def crit(name: str, accuracy: float | None) -> Criterion:
        return Criterion(
            name=name, description="d", stats=None if accuracy is None else CriterionStats(accuracy=accuracy)
        )

    criteria = [crit("u1", None), crit("low", 0.6), crit("high", 0.9), crit("u2", None), crit("mid", 0.75)]
    assert [criteria[i].name for i in asking_order(criteria)] == ["high", "mid", "low", "u1", "u2"]


def test_simulation_asks_about_23_percent_fewer_with_8_criteria_of_accuracy_08() -> None:
    exact = expected_asked([0.8] * 8, [1.0] * 8, margin=0)
    rng = random.Random(0)
    rows = [["A" if rng.random() < 0.8 else "B" for _ in range(8)] for _ in range(20000)]
    simulated = sum(stopped_vote(row, 0) for row in rows) / len(rows)
    assert abs(simulated - exact) < 0.05
    assert 0.22 < 1 - exact / 8 < 0.24
    # criteria that agree more save more; a wider margin saves less
    assert expected_asked([0.95] * 8, [1.0] * 8, 0) < exact < expected_asked([0.8] * 8, [1.0] * 8, 2)
