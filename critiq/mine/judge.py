"""Worker agents: one structured call per (example, criterion, order), never twice for the same criterion text."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from pydantic import Field

from critiq.data.models import Criterion, Example, Judgment, Pair
from critiq.llm.protocol import ChatClient
from critiq.llm.structured import Reply
from critiq.prompts import Prompts, fence

log = logging.getLogger(__name__)

SwapMode = Literal["random", "both", "none"]
RATIONALE_CHARS = 200


class PairAnswer(Reply):
    """What a worker returns for a pair."""

    rationale: str = Field(max_length=RATIONALE_CHARS, description="one short sentence")
    verdict: Literal["A", "B", "none"]


class PointAnswer(Reply):
    """What a worker returns for a single text."""

    rationale: str = Field(max_length=RATIONALE_CHARS, description="one short sentence")
    verdict: Literal["yes", "no", "none"]


def criterion_key(criterion: Criterion) -> str:
    """Identity of a criterion's *text*: a rewritten description is a new criterion to judge."""
    return hashlib.sha256(criterion.text.encode()).hexdigest()[:16]


MemoKey = tuple[str, str, bool]


class Worker:
    """Judges examples against criteria with an LLM.

    ``swap="random"`` shows each pair in a fixed random order (seeded per pair id, as the paper does);
    ``swap="both"`` judges both orders and counts disagreeing orders as ``none``; ``swap="none"`` keeps A first.
    Raw judgments live in ``memo`` keyed by (criterion text, example id, order); ``on_judgment`` sees each new one
    (the flow appends them to its run directory so a resumed run asks nothing twice).
    """

    def __init__(
        self,
        client: ChatClient,
        prompts: Prompts | None = None,
        *,
        swap: SwapMode = "random",
        seed: int = 0,
        on_judgment: Callable[[str, Judgment], None] | None = None,
    ) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self.swap = swap
        self.seed = seed
        self.memo: dict[MemoKey, Judgment] = {}
        self.on_judgment = on_judgment

    # ------------------------------------------------------------------ orders
    def orders(self, example: Example) -> list[bool]:
        """Which presentations to judge: ``False`` = as given, ``True`` = reversed."""
        if not isinstance(example, Pair) or self.swap == "none":
            return [False]
        if self.swap == "both":
            return [False, True]
        digest = hashlib.sha256(f"{self.seed}:{example.id}".encode()).digest()
        return [bool(random.Random(digest).getrandbits(1))]

    # ------------------------------------------------------------------ prompts
    def messages(self, example: Example, criterion: Criterion, swapped: bool) -> list[dict[str, str]]:
        """Texts first, criterion last: servers with prefix caching reuse the pair across criteria."""
        if isinstance(example, Pair):
            first, second = (example.b, example.a) if swapped else (example.a, example.b)
            user = self.prompts.render(
                "judge_pair",
                text_a=fence(first, "TEXT_A"),
                text_b=fence(second, "TEXT_B"),
                name=criterion.name,
                description=criterion.description,
            )
        else:
            user = self.prompts.render(
                "judge_point", text=fence(example.text, "TEXT"), name=criterion.name, description=criterion.description
            )
        return [{"role": "system", "content": self.prompts.render("judge_system")}, {"role": "user", "content": user}]

    # ------------------------------------------------------------------ judging
    def missing(
        self, examples: Iterable[Example], criteria: Iterable[Criterion]
    ) -> list[tuple[Criterion, Example, bool]]:
        """(criterion, example, order) cells not judged yet (failed ones are asked again)."""
        cells = []
        for criterion in criteria:
            key = criterion_key(criterion)
            for example in examples:
                for swapped in self.orders(example):
                    done = self.memo.get((key, example.id, swapped))
                    if done is None or done.failed:
                        cells.append((criterion, example, swapped))
        return cells

    async def judge(
        self,
        examples: Sequence[Example],
        criteria: Sequence[Criterion],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Judge every missing cell concurrently; returns how many cells were asked."""
        cells = self.missing(examples, criteria)
        total = len(cells)
        done = 0

        async def one(criterion: Criterion, example: Example, swapped: bool) -> None:
            nonlocal done
            judgment = await self._judge_one(criterion, example, swapped)
            key = (criterion_key(criterion), example.id, swapped)
            self.memo[key] = judgment
            if self.on_judgment is not None and not judgment.failed:
                self.on_judgment(key[0], judgment)
            done += 1
            if progress is not None:
                progress(done, total)

        await asyncio.gather(*(one(*cell) for cell in cells))
        return total

    async def _judge_one(self, criterion: Criterion, example: Example, swapped: bool) -> Judgment:
        schema: type[PairAnswer] | type[PointAnswer] = PairAnswer if isinstance(example, Pair) else PointAnswer
        completion = await self.client.complete(self.messages(example, criterion, swapped), schema=schema)
        if completion.failed or completion.parsed is None:
            return Judgment(
                example_id=example.id,
                criterion=criterion.name,
                verdict="none",
                swapped=swapped,
                failed=True,
                rationale=completion.error or "",
            )
        answer = completion.parsed
        verdict = {"yes": "A", "no": "B"}.get(answer.verdict, answer.verdict)
        if swapped and verdict in ("A", "B"):
            verdict = "B" if verdict == "A" else "A"
        return Judgment(
            example_id=example.id,
            criterion=criterion.name,
            verdict=verdict,  # type: ignore[arg-type]
            rationale=answer.rationale,
            swapped=swapped,
        )

    # ------------------------------------------------------------------ results
    def raw(self, criterion: Criterion, example: Example) -> list[Judgment]:
        """The judgments of each order of one cell (verdicts already mapped back to the original order)."""
        key = criterion_key(criterion)
        return [j for s in self.orders(example) if (j := self.memo.get((key, example.id, s))) is not None]

    def verdict(self, criterion: Criterion, example: Example) -> Judgment | None:
        """The cell's verdict: orders that disagree give ``none``; ``None`` when not judged."""
        judgments = self.raw(criterion, example)
        if len(judgments) < len(self.orders(example)):
            return None
        if len({j.verdict for j in judgments}) == 1:
            return judgments[0]
        first = judgments[0]
        return first.model_copy(update={"verdict": "none", "rationale": "orders disagree: " + first.rationale})

    def verdicts(self, criterion: Criterion, examples: Sequence[Example]) -> list[Judgment]:
        return [j for example in examples if (j := self.verdict(criterion, example)) is not None]

    def load(self, key: str, judgment: Judgment) -> None:
        """Restore a judgment saved by an earlier run (resume)."""
        self.memo[(key, judgment.example_id, judgment.swapped)] = judgment
