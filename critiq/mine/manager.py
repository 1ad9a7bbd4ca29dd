"""The manager agent: learns from the human pairs, proposes criteria, critiques mistakes and rewrites criteria.

Every reply is a validated structured output; a reply that does not validate (a non-string description, an empty
name, a duplicate) is re-asked once, then skipped with a warning — it never crashes the flow.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence

from pydantic import Field

from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair
from critiq.llm.protocol import ChatClient
from critiq.llm.structured import Reply
from critiq.prompts import Prompts, fence

log = logging.getLogger(__name__)


QUALITY_WORDS = {"en": ("good", "poor"), "zh": ("高", "低")}


class Reason(Reply):
    reason: str = Field(min_length=1, max_length=400)


class Proposal(Reply):
    name: str = Field(min_length=2, max_length=64)
    description: str = Field(min_length=10, max_length=500)


class Proposals(Reply):
    criteria: list[Proposal] = Field(min_length=1, max_length=12)


class Critique(Reply):
    critique: str = Field(min_length=1, max_length=500)


def snake_case(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def name_words(name: str) -> set[str]:
    return {w for w in snake_case(name).split("_") if w}


def jaccard(left: set[str], right: set[str]) -> float:
    return len(left & right) / len(left | right) if left | right else 0.0


def is_placeholder(text: str) -> bool:
    """The reply echoed the prompt's format hint instead of writing a criterion (small models do)."""
    lowered = text.lower()
    return (
        ("<" in text and ">" in text) or lowered in {"snake_case_name", "name"} or "one to three sentences" in lowered
    )


def is_new(name: str, description: str, taken: Sequence[Criterion], threshold: float = 0.3) -> bool:
    """A proposal is new when neither its name words (Jaccard > threshold, as in the paper) nor its text repeat."""
    words = name_words(name)
    return all(jaccard(words, name_words(c.name)) <= threshold and c.description != description for c in taken)


class Manager:
    """The manager LLM. ``notes`` (its warm-up reasons) prefix every later request, as its memory of the data."""

    def __init__(
        self,
        client: ChatClient,
        prompts: Prompts | None = None,
        *,
        task: str = "training data",
        notes_chars: int = 2500,
        max_tokens: int = 400,
    ) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self.task = task
        self.notes_chars = notes_chars
        self.max_tokens = max_tokens
        self.notes: list[str] = []

    def _system(self) -> dict[str, str]:
        return {"role": "system", "content": self.prompts.render("manager_system", task=self.task)}

    def notes_block(self) -> str:
        lines, size = [], 0
        for note in self.notes:
            if size + len(note) > self.notes_chars:
                break
            lines.append(note)
            size += len(note) + 1
        return self.prompts.render("notes", notes="\n".join(lines) or "-")

    async def warm_up(
        self, examples: Sequence[Example], progress: Callable[[int, int], None] | None = None
    ) -> list[str]:
        """Ask why the human-preferred text is better, for each example; keep the answers as notes."""
        done = 0

        async def one(index: int, example: Example) -> str | None:
            nonlocal done
            reply = await self.client.complete(self._warmup_messages(example), schema=Reason, max_tokens=160)
            done += 1
            if progress is not None:
                progress(done, len(examples))
            if reply.parsed is None:
                return None
            reason = reply.parsed.reason.strip()
            return f"- example {index + 1} ({example.gold} preferred): {reason}"

        labelled = [e for e in examples if e.gold is not None]
        notes = await asyncio.gather(*(one(i, e) for i, e in enumerate(labelled)))
        self.notes = [n for n in notes if n]
        return self.notes

    def _warmup_messages(self, example: Example) -> list[dict[str, str]]:
        gold = example.gold
        if isinstance(example, Pair):
            user = self.prompts.render(
                "warmup_pair", text_a=fence(example.a, "TEXT_A"), text_b=fence(example.b, "TEXT_B"), preferred=gold
            )
        else:
            words = QUALITY_WORDS.get(self.prompts.language, QUALITY_WORDS["en"])
            user = self.prompts.render(
                "warmup_point", text=fence(example.text, "TEXT"), label=words[0 if gold == "A" else 1]
            )
        return [self._system(), {"role": "user", "content": user}]

    async def propose(
        self, count: int, existing: Sequence[Criterion], banned: Sequence[Criterion], attempts: int = 2
    ) -> list[Criterion]:
        """Up to ``count`` new criteria that differ from the existing and the banned ones."""
        found: list[Criterion] = []
        for sample in range(attempts):
            want = count - len(found)
            if want <= 0:
                break
            user = self.prompts.render(
                "propose",
                notes=self.notes_block(),
                count=want,
                existing=_listing([*existing, *found]),
                banned=_listing(banned),
            )
            reply = await self.client.complete(
                [self._system(), {"role": "user", "content": user}],
                schema=Proposals,
                sample=sample,
                max_tokens=self.max_tokens,
            )
            if reply.parsed is None:
                log.warning("manager proposal was unusable: %s", reply.error)
                continue
            for proposal in reply.parsed.criteria:
                name = snake_case(proposal.name)
                description = proposal.description.strip()
                if is_placeholder(proposal.name) or is_placeholder(description):
                    continue
                if name and len(found) < count and is_new(name, description, [*existing, *banned, *found]):
                    found.append(Criterion(name=name, description=description, source="manager", origin="manager"))
        if len(found) < count:
            log.warning("manager proposed %d of %d new criteria", len(found), count)
        return found

    async def critique(self, criterion: Criterion, example: Example, judgment: Judgment) -> str | None:
        """Why the worker got this example wrong under this criterion (the right answer and rationale shown)."""
        gold = example.gold
        if isinstance(example, Pair):
            text_a, text_b = fence(example.a, "TEXT_A"), fence(example.b, "TEXT_B")
        else:
            text_a, text_b = fence(example.text, "TEXT"), "(single-text example: A = good, B = poor)"
        user = self.prompts.render(
            "critique",
            text_a=text_a,
            text_b=text_b,
            name=criterion.name,
            description=criterion.description,
            gold=gold,
            verdict=judgment.verdict,
            rationale=judgment.rationale.replace('"', "'"),
        )
        reply = await self.client.complete(
            [self._system(), {"role": "user", "content": user}], schema=Critique, max_tokens=200
        )
        return reply.parsed.critique.strip() if reply.parsed is not None else None

    async def rewrite(self, criterion: Criterion, stats: CriterionStats, critiques: Sequence[str]) -> Criterion | None:
        """A new description for a mid criterion, from the critiques of its mistakes; keeps the name."""
        accuracy = f"{stats.accuracy:.0%}" if stats.accuracy is not None else "few"
        user = self.prompts.render(
            "rewrite",
            notes=self.notes_block(),
            name=criterion.name,
            description=criterion.description,
            accuracy=accuracy,
            critiques="\n".join(f"- {c}" for c in critiques),
        )
        reply = await self.client.complete(
            [self._system(), {"role": "user", "content": user}], schema=Proposal, max_tokens=self.max_tokens
        )
        if reply.parsed is None:
            log.warning("manager rewrite of %s was unusable: %s", criterion.name, reply.error)
            return None
        description = reply.parsed.description.strip()
        if description == criterion.description or is_placeholder(description):
            return None
        return criterion.model_copy(update={"description": description, "stats": None})


def _listing(criteria: Sequence[Criterion]) -> str:
    return "\n".join(f"- {c.name}: {c.description}" for c in criteria) or "- (none)"
