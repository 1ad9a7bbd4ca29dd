"""The manager agent: learns from the human pairs, proposes criteria, critiques mistakes and rewrites criteria.

Every reply is a validated structured output; a reply that does not validate (a non-string description, an empty
name, a duplicate) is re-asked once, then skipped with a warning — it never crashes the flow. Every request runs at
the manager's own temperature (the reference code's default is 1.0), passed per call, so the workers' stays theirs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import Field

from critiq.data.models import Criterion, CriterionStats, Example, Judgment, Pair
from critiq.knowledge.text import jaccard, name_words
from critiq.llm.protocol import ChatClient, Completion
from critiq.llm.structured import Reply
from critiq.mine.evidence import EvidenceFitter, Messages
from critiq.prompts import Prompts, fence
from critiq.rundir.flow import Evidence

log = logging.getLogger(__name__)


QUALITY_WORDS = {"en": ("good", "poor"), "zh": ("高", "低")}
R = TypeVar("R", bound=Reply)
NOTE_KEY = "note"  # a pair's metadata["note"]: the labeller's own reason (written by `critiq label`)


class Reason(Reply):
    reason: str = Field(min_length=1, max_length=400)


DESCRIPTION_CHARS = 500  # the reference asks for "specific and detailed while concise"; the cap keeps a proposal
# (and a critique, below) inside the manager's token budget (manager_max_tokens, 400 by default)


class Proposal(Reply):
    name: str = Field(min_length=2, max_length=64)
    description: str = Field(min_length=10, max_length=DESCRIPTION_CHARS)


class Proposals(Reply):
    criteria: list[Proposal] = Field(min_length=1, max_length=12)


class Critique(Reply):
    """The reference's critique reply: an analysis of the wrong case, then the critique."""

    analysis: str = Field(default="", max_length=600)
    critique: str = Field(min_length=1, max_length=500)


def snake_case(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


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


def person_note(example: Example) -> str | None:
    """The labeller's own reason for this example, when the labelling page recorded one."""
    note = example.metadata.get(NOTE_KEY)
    return note.strip() if isinstance(note, str) and note.strip() else None


class Manager:
    """The manager LLM. ``evidence`` (one note per human example) goes into every propose and rewrite request.

    ``fitter`` decides how much of the evidence fits the manager's context; without one, all of it is sent.
    """

    def __init__(
        self,
        client: ChatClient,
        prompts: Prompts | None = None,
        *,
        task: str = "training data",
        max_tokens: int = 400,
        temperature: float = 1.0,
        fitter: EvidenceFitter | None = None,
        seed: int = 0,
    ) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self.task = task
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.fitter = fitter
        self.seed = seed
        self.evidence: list[Evidence] = []

    async def _complete(self, messages: Messages, schema: type[R], **params: Any) -> Completion[R]:
        return await self.client.complete(messages, schema=schema, temperature=self.temperature, **params)

    def _system(self) -> dict[str, str]:
        return {"role": "system", "content": self.prompts.render("manager_system", task=self.task)}

    def _notes_block(self, evidence: Sequence[Evidence]) -> str:
        return self.prompts.render("notes", notes="\n".join(e.text for e in evidence) or "-")

    def _with_evidence(self, user: Callable[[str], str]) -> Messages:
        """A request whose user message is ``user(notes block)``, holding as much evidence as fits."""

        def build(chosen: Sequence[Evidence]) -> Messages:
            return [self._system(), {"role": "user", "content": user(self._notes_block(chosen))}]

        if self.fitter is None:
            return build(self.evidence)
        messages, _ = self.fitter.fit(self.evidence, build)
        return messages

    # ------------------------------------------------------------------ warm-up
    async def warm_up(
        self,
        examples: Sequence[Example],
        swapped: Callable[[Example], bool] = lambda example: False,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Evidence]:
        """Ask why the human-preferred text is better, for each example in a seeded random order; keep the answers.

        A pair is shown as ``swapped(pair)`` says (the order the workers see it in); a person's own note on the
        example (``metadata["note"]``) is shown to the manager and kept with its answer.
        """
        labelled = [e for e in examples if e.gold is not None]
        random.Random(self.seed).shuffle(labelled)
        done = 0

        async def one(number: int, example: Example) -> Evidence | None:
            nonlocal done
            flipped = isinstance(example, Pair) and swapped(example)
            reply = await self._complete(self._warmup_messages(example, flipped), Reason, max_tokens=160)
            done += 1
            if progress is not None:
                progress(done, len(labelled))
            reason = reply.parsed.reason.strip() if reply.parsed is not None else ""
            if not reason:
                kept = "its human note is kept" if person_note(example) else "it gives the manager no evidence"
                log.warning("warm-up reply on %s was unusable (%s): %s", example.id, reply.error or "empty", kept)
            return self._evidence(number, example, flipped, reason)

        found = await asyncio.gather(*(one(i + 1, e) for i, e in enumerate(labelled)))
        self.evidence = [e for e in found if e is not None]
        return self.evidence

    def _shown_label(self, example: Example, flipped: bool) -> str:
        gold = example.gold or "A"
        if isinstance(example, Pair):
            return {"A": "B", "B": "A"}[gold] if flipped else gold
        words = QUALITY_WORDS.get(self.prompts.language, QUALITY_WORDS["en"])
        return words[0 if gold == "A" else 1]

    def _note(self, template: str, example: Example, flipped: bool) -> str:
        """The labeller's note, fenced, with a word on its A/B when the pair is shown in the other order."""
        note = person_note(example)
        if not note:
            return ""
        order = self.prompts.fragment("note_flipped") if flipped and isinstance(example, Pair) else ""
        return self.prompts.fragment(template, note=fence(note, "NOTE"), order=order)

    def _warmup_messages(self, example: Example, flipped: bool) -> Messages:
        note_text = self._note("warmup_note", example, flipped)
        label = self._shown_label(example, flipped)
        if isinstance(example, Pair):
            first, second = (example.b, example.a) if flipped else (example.a, example.b)
            user = self.prompts.render(
                "warmup_pair",
                text_a=fence(first, "TEXT_A"),
                text_b=fence(second, "TEXT_B"),
                preferred=label,
                note=note_text,
            )
        else:
            user = self.prompts.render("warmup_point", text=fence(example.text, "TEXT"), label=label, note=note_text)
        return [self._system(), {"role": "user", "content": user}]

    def _evidence(self, number: int, example: Example, flipped: bool, reason: str) -> Evidence | None:
        note = person_note(example)
        if not reason and not note:
            return None
        note_text = self._note("evidence_note", example, flipped)
        template = "evidence_pair" if isinstance(example, Pair) else "evidence_point"
        line = self.prompts.render(
            template,
            number=number,
            domain=f" [{example.domain}]" if example.domain else "",
            label=self._shown_label(example, flipped),
            reason=reason or "-",
            note=note_text,
        )
        return Evidence(example_id=example.id, label=example.gold or "", domain=example.domain, text=line)

    # ------------------------------------------------------------------ criteria
    async def propose(
        self, count: int, existing: Sequence[Criterion], banned: Sequence[Criterion], attempts: int = 2
    ) -> list[Criterion]:
        """Up to ``count`` new criteria that differ from the existing and the banned ones."""
        found: list[Criterion] = []
        for sample in range(attempts):
            want = count - len(found)
            if want <= 0:
                break
            messages = self._with_evidence(
                functools.partial(
                    self._render_propose, count=want, existing=_listing([*existing, *found]), banned=_listing(banned)
                )
            )
            reply = await self._complete(messages, Proposals, sample=sample, max_tokens=self.max_tokens)
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

    def _render_propose(self, notes: str, *, count: int, existing: str, banned: str) -> str:
        return self.prompts.render("propose", notes=notes, count=count, existing=existing, banned=banned)

    async def critique(self, criterion: Criterion, example: Example, judgment: Judgment) -> str | None:
        """Why the worker got this example wrong under this criterion.

        The request shows what the worker saw: the texts in the worker's order (``judgment.swapped``), the worker's
        verdict and the human answer in that order, the worker's analysis, and the pair's human note; every one of
        them is fenced.
        """
        if judgment.verdict is None:
            raise ValueError(f"{criterion.name}: a failed judgment has no verdict to critique")
        flipped = isinstance(example, Pair) and judgment.swapped
        shown = self._shown_label(example, flipped)
        common = {
            "name": criterion.name,
            "description": criterion.description,
            "rationale": fence(judgment.rationale or "-", "ANALYSIS"),
            "note": self._note("critique_note", example, flipped),
        }
        if isinstance(example, Pair):
            first, second = (example.b, example.a) if flipped else (example.a, example.b)
            verdict = {"A": "B", "B": "A"}.get(judgment.verdict, judgment.verdict) if flipped else judgment.verdict
            user = self.prompts.render(
                "critique",
                text_a=fence(first, "TEXT_A"),
                text_b=fence(second, "TEXT_B"),
                gold=shown,
                verdict=verdict,
                **common,
            )
        else:
            said = {"A": "yes", "B": "no"}.get(judgment.verdict, judgment.verdict)
            user = self.prompts.render(
                "critique_point", text=fence(example.text, "TEXT"), label=shown, verdict=said, **common
            )
        reply = await self._complete(
            [self._system(), {"role": "user", "content": user}], Critique, max_tokens=self.max_tokens
        )
        return reply.parsed.critique.strip() if reply.parsed is not None else None

    async def rewrite(self, criterion: Criterion, stats: CriterionStats, critiques: Sequence[str]) -> Criterion | None:
        """A new description for a mid criterion, from the critiques of its mistakes; keeps the name."""
        accuracy = f"{stats.decided_accuracy:.0%}" if stats.decided_accuracy is not None else "few"
        messages = self._with_evidence(
            lambda notes: self.prompts.render(
                "rewrite",
                notes=notes,
                name=criterion.name,
                description=criterion.description,
                accuracy=accuracy,
                critiques="\n".join(f"- {fence(c, 'CRITIQUE')}" for c in critiques) or "- (none)",
            )
        )
        reply = await self._complete(messages, Proposal, max_tokens=self.max_tokens)
        if reply.parsed is None:
            log.warning("manager rewrite of %s was unusable: %s", criterion.name, reply.error)
            return None
        description = reply.parsed.description.strip()
        if description == criterion.description or is_placeholder(description):
            return None
        return criterion.model_copy(update={"description": description, "stats": None})


def _listing(criteria: Sequence[Criterion]) -> str:
    return "\n".join(f"- {c.name}: {c.description}" for c in criteria) or "- (none)"
