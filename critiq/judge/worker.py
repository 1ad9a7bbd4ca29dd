"""Worker agents: structured judgments of examples under criteria, each cell asked once per criterion text.

Four modes share one interface (``judge`` then ``verdict``):

* ``per-criterion`` (the paper's method): one request per (example, criterion, order);
* ``all-in-one``: one request per (example, order) listing every criterion, answering a verdict per criterion (the
  paper's "all criteria in one prompt" ablation; also a cheap mode for annotation);
* ``overall``: the criterion-free baseline, "which text is better overall?", answered A or B (the reference's
  single-judge baseline; pass any one criterion as its label);
* ``combined``: the reference's "all criteria in one prompt" baseline: one request per (example, order) showing every
  criterion (the criterion passed is the set, its description their listing) and one A/B answer for them all.

The answers each mode asks for are in :mod:`critiq.judge.answers`. The rationale kept with a judgment is the worker's
own text, in the order the worker saw the texts (``Judgment.swapped`` says which that was).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Iterable, Sequence

from critiq.data.models import Criterion, Example, Judgment, Pair
from critiq.judge.answers import PAIR_VERDICTS, POINT_VERDICTS, answer_schema, field_name, token_budget
from critiq.judge.keys import criterion_key, set_key
from critiq.judge.modes import SwapMode, WorkerMode
from critiq.llm.protocol import ChatClient, Completion
from critiq.llm.structured import Reply
from critiq.prompts import Prompts, fence

log = logging.getLogger(__name__)

MemoKey = tuple[str, str, bool]


class Worker:
    """Judges examples against criteria with an LLM.

    ``swap="random"`` shows each pair in a fixed random order (seeded per pair id, as the paper does);
    ``swap="both"`` judges both orders and counts disagreeing orders as ``none``; ``swap="none"`` keeps A first.
    Raw judgments live in ``memo`` keyed by (criterion text, example id, order); ``on_judgment`` sees each new one
    (the flow appends them to its run directory so a resumed run asks nothing twice). In ``all-in-one`` mode a
    verdict depends on the set it was judged in: changing the set re-judges the example.
    """

    def __init__(
        self,
        client: ChatClient,
        prompts: Prompts | None = None,
        *,
        swap: SwapMode = "random",
        seed: int = 0,
        mode: WorkerMode = "per-criterion",
        on_judgment: Callable[[str, Judgment], None] | None = None,
    ) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self.swap = swap
        self.seed = seed
        self.mode = mode
        self.memo: dict[MemoKey, Judgment] = {}
        self.sets: dict[MemoKey, str] = {}  # all-in-one: the set each cell was judged in
        self.on_judgment = on_judgment

    # ------------------------------------------------------------------ orders
    def orders(self, example: Example) -> list[bool]:
        """Which presentations to judge: ``False`` = as given, ``True`` = reversed."""
        if not isinstance(example, Pair) or self.swap == "none":
            return [False]
        if self.swap == "both":
            return [False, True]
        return [self.seeded_swap(example)]

    def seeded_swap(self, example: Example) -> bool:
        """The pair's fixed random order (seeded by the pair id): what ``swap="random"`` shows."""
        if not isinstance(example, Pair) or self.swap == "none":
            return False
        digest = hashlib.sha256(f"{self.seed}:{example.id}".encode()).digest()
        return bool(random.Random(digest).getrandbits(1))

    # ------------------------------------------------------------------ prompts
    def messages(self, example: Example, criterion: Criterion, swapped: bool) -> list[dict[str, str]]:
        """Texts first, criterion last: servers with prefix caching reuse the pair across criteria."""
        if self.mode == "all-in-one":
            return self.messages_for_set(example, [criterion], swapped)
        overall = self.mode == "overall"
        what = {} if overall else {"name": criterion.name, "description": criterion.description}
        suffix = {"overall": "_overall", "combined": "_combined"}.get(self.mode, "")
        if isinstance(example, Pair):
            first, second = (example.b, example.a) if swapped else (example.a, example.b)
            user = self.prompts.render(
                f"judge{suffix}_pair", text_a=fence(first, "TEXT_A"), text_b=fence(second, "TEXT_B"), **what
            )
        else:
            user = self.prompts.render(f"judge{suffix}_point", text=fence(example.text, "TEXT"), **what)
        system = self.prompts.render("judge_system_all" if self.mode == "combined" else f"judge_system{suffix}")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def messages_for_set(self, example: Example, criteria: Sequence[Criterion], swapped: bool) -> list[dict[str, str]]:
        """The all-in-one request: the texts, then every criterion under its answer field."""
        listing = "\n".join(
            self.prompts.render("judge_all_item", field=field_name(i), name=c.name, description=c.description)
            for i, c in enumerate(criteria)
        )
        choices = " | ".join(f'"{v}"' for v in (PAIR_VERDICTS if isinstance(example, Pair) else POINT_VERDICTS))
        fields = ", ".join(f'"{field_name(i)}": {choices}' for i in range(len(criteria)))
        if isinstance(example, Pair):
            first, second = (example.b, example.a) if swapped else (example.a, example.b)
            user = self.prompts.render(
                "judge_all_pair",
                text_a=fence(first, "TEXT_A"),
                text_b=fence(second, "TEXT_B"),
                criteria=listing,
                fields=fields,
            )
        else:
            user = self.prompts.render(
                "judge_all_point", text=fence(example.text, "TEXT"), criteria=listing, fields=fields
            )
        return [
            {"role": "system", "content": self.prompts.render("judge_system_all")},
            {"role": "user", "content": user},
        ]

    # ------------------------------------------------------------------ judging
    def missing(
        self, examples: Iterable[Example], criteria: Sequence[Criterion]
    ) -> list[tuple[Criterion, Example, bool]]:
        """(criterion, example, order) cells not judged yet (failed ones are asked again), example by example and
        order by order: one example's requests in one order differ only after its texts, so a server that keeps the
        previous prompt's KV cache (llama.cpp) or caches prefixes (vLLM) reads those texts once (docs/scaling.md).

        In all-in-one mode a cell judged within another set of criteria counts as missing too.
        """
        group = set_key(criteria) if self.mode == "all-in-one" else None
        keys = [criterion_key(criterion) for criterion in criteria]
        cells = []
        for example in examples:
            for swapped in self.orders(example):
                for criterion, key in zip(criteria, keys, strict=True):
                    memo_key = (key, example.id, swapped)
                    done = self.memo.get(memo_key)
                    if done is None or done.failed or (group is not None and self.sets.get(memo_key) != group):
                        cells.append((criterion, example, swapped))
        return cells

    async def judge(
        self,
        examples: Sequence[Example],
        criteria: Sequence[Criterion],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Judge every missing cell concurrently; returns how many requests were sent (or answered from cache)."""
        cells = self.missing(examples, criteria)
        if self.mode == "all-in-one":
            return await self._judge_sets(cells, criteria, progress)
        total = len(cells)
        done = 0

        async def one(criterion: Criterion, example: Example, swapped: bool) -> None:
            nonlocal done
            completion = await self._ask(self.messages(example, criterion, swapped), example)
            self._store(criterion, example, swapped, completion, None)
            done += 1
            if progress is not None:
                progress(done, total)

        await asyncio.gather(*(one(*cell) for cell in cells))
        return total

    async def _judge_sets(
        self,
        cells: list[tuple[Criterion, Example, bool]],
        criteria: Sequence[Criterion],
        progress: Callable[[int, int], None] | None,
    ) -> int:
        self.sets = {key: group for key, group in self.sets.items() if key in self.memo}  # forget cleared cells
        group = set_key(criteria)
        requests = list(dict.fromkeys((example.id, swapped) for _, example, swapped in cells))
        by_id = {example.id: example for _, example, _ in cells}
        done = 0

        async def one(example: Example, swapped: bool) -> None:
            nonlocal done
            completion = await self._ask(self.messages_for_set(example, criteria, swapped), example, len(criteria))
            for index, criterion in enumerate(criteria):
                self._store(criterion, example, swapped, completion, (group, index))
            done += 1
            if progress is not None:
                progress(done, len(requests))

        await asyncio.gather(*(one(by_id[example_id], swapped) for example_id, swapped in requests))
        return len(requests)

    async def _ask(
        self, messages: list[dict[str, str]], example: Example, count: int | None = None
    ) -> Completion[Reply]:
        pair = isinstance(example, Pair)
        schema = answer_schema(self.mode, pair, count)
        budget = max(self.client.config.max_tokens, token_budget(pair, self.prompts.language))
        return await self.client.complete(messages, schema=schema, max_tokens=budget)

    def _store(
        self,
        criterion: Criterion,
        example: Example,
        swapped: bool,
        completion: Completion[Reply],
        in_set: tuple[str, int] | None,
    ) -> None:
        key = criterion_key(criterion)
        judgment = _judgment(
            criterion, example, swapped, completion, None if in_set is None else in_set[1], self.prompts
        )
        memo_key = (key, example.id, swapped)
        self.memo[memo_key] = judgment
        if in_set is not None:
            self.sets[memo_key] = in_set[0]
        if self.on_judgment is not None and not judgment.failed:
            self.on_judgment(key if in_set is None else f"{key}@{in_set[0]}", judgment)

    # ------------------------------------------------------------------ results
    def raw(self, criterion: Criterion, example: Example) -> list[Judgment]:
        """The judgments of each order of one cell (verdicts already mapped back to the original order)."""
        key = criterion_key(criterion)
        return [j for s in self.orders(example) if (j := self.memo.get((key, example.id, s))) is not None]

    def verdict(self, criterion: Criterion, example: Example) -> Judgment | None:
        """The cell's verdict: orders that disagree give ``none``, a failed order fails the cell; ``None`` when
        not judged."""
        judgments = self.raw(criterion, example)
        if len(judgments) < len(self.orders(example)):
            return None
        failed = next((j for j in judgments if j.failed), None)
        if failed is not None:
            return failed
        if len({j.verdict for j in judgments}) == 1:
            return judgments[0]
        first = judgments[0]
        return first.model_copy(update={"verdict": "none", "rationale": "orders disagree: " + first.rationale})

    def verdicts(self, criterion: Criterion, examples: Sequence[Example]) -> list[Judgment]:
        return [j for example in examples if (j := self.verdict(criterion, example)) is not None]

    def load(self, key: str, judgment: Judgment) -> None:
        """Restore a judgment saved by an earlier run (resume)."""
        criterion, _, group = key.partition("@")
        memo_key = (criterion, judgment.example_id, judgment.swapped)
        self.memo[memo_key] = judgment
        if group:
            self.sets[memo_key] = group

    def clear(self) -> None:
        """Forget every judgment (a long annotation run keeps memory flat this way)."""
        self.memo.clear()
        self.sets.clear()


def worker_rationale(answer: Reply, prompts: Prompts) -> str:
    """The worker's analyses and comparison as one text, in the order the worker saw the texts."""
    values = {name: str(getattr(answer, name, "")).strip() for name in ("analysis_a", "analysis_b", "comparison")}
    if hasattr(answer, "analysis"):
        return str(answer.analysis).strip()
    if not any(values.values()):
        return ""
    return prompts.render("worker_rationale", **values)


def _judgment(
    criterion: Criterion,
    example: Example,
    swapped: bool,
    completion: Completion[Reply],
    index: int | None,
    prompts: Prompts,
) -> Judgment:
    answer = completion.parsed
    if completion.failed or answer is None:
        return Judgment(
            example_id=example.id,
            criterion=criterion.name,
            verdict=None,
            swapped=swapped,
            failed=True,
            rationale=completion.error or "",
        )
    raw = getattr(answer, "verdict" if index is None else field_name(index))
    verdict = {"yes": "A", "no": "B"}.get(raw, raw)
    if swapped and verdict in ("A", "B"):
        verdict = "B" if verdict == "A" else "A"
    return Judgment(
        example_id=example.id,
        criterion=criterion.name,
        verdict=verdict,
        rationale=worker_rationale(answer, prompts),
        swapped=swapped,
    )
