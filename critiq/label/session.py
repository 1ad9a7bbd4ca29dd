"""One labelling session: pairs are issued once, each with a ticket; only an issued ticket's answer is accepted.

A tab (a page, named by an id it keeps across reloads) holds at most one pair; asking again returns the same pair.
Every change goes through one lock, so two tabs never get the same pair or write the same label. Answers are on
disk (:class:`LabelStore`) before the next pair is chosen; restarting on the same store resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from critiq.errors import CritiqError, InputError
from critiq.knowledge.retrieval import infer_domains
from critiq.label.candidates import Candidate, CandidatePool, Text
from critiq.label.selection import Selector
from critiq.label.storage import LabelStore

CHOICES: dict[str, str | None] = {"a": "a", "b": "b", "tie": None}  # a tie is recorded as skipped, not a label
NOTE_CHARS = 1000
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str | None) -> str | None:
    """``text`` as the page shows it: bidirectional controls, which reorder what is seen, become ``<U+202E>``."""
    if text is None:
        return None
    return BIDI_CONTROLS.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)


class Refused(CritiqError):
    """An answer or undo the session cannot accept: a pair it did not issue, or nothing to undo."""


@dataclass
class Issue:
    """A pair on screen in one tab, with the secret ``ticket`` its answer must carry."""

    ticket: str
    candidate: Candidate
    picked: str
    tab: str
    issued_at: float
    note: str = ""
    code: bool = field(init=False)

    def __post_init__(self) -> None:
        texts = [self.candidate.left.body, self.candidate.right.body]
        domain = self.candidate.left.domain or self.candidate.right.domain
        self.code = domain == "code" or "code" in infer_domains(texts)

    def view(self) -> dict[str, Any]:
        """What the page shows (plain data: the page inserts every string as text)."""
        left, right = self.candidate.left, self.candidate.right
        return {
            "id": self.candidate.id,
            "ticket": self.ticket,
            "prompt": visible(self.candidate.prompt),
            "prompt_a": None if self.candidate.prompt else visible(left.prompt),
            "prompt_b": None if self.candidate.prompt else visible(right.prompt),
            "a": visible(left.body),
            "b": visible(right.body),
            "code": self.code,
            "picked": self.picked,
            "note": self.note,
        }


class LabelSession:
    """Issues pairs from ``pool`` chosen by ``selector`` and records answers in ``store``."""

    def __init__(
        self,
        pool: CandidatePool,
        store: LabelStore,
        selector: Selector,
        *,
        annotator: str,
        source: str,
        target: int = 30,
        task: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.store = store
        self.selector = selector
        self.annotator = annotator
        self.source = source
        self.target = target
        self.task = task
        self.clock = clock
        self.issued: dict[str, Issue] = {}
        self.held: dict[str, str] = {}
        self.last_prompts: frozenset[str] = frozenset()
        self.lock = asyncio.Lock()
        for row in store.labels + store.skipped:
            pool.mark_done(frozenset((row["a"], row["b"])))

    def progress(self) -> dict[str, int]:
        return {"labels": len(self.store.labels), "target": self.target, "skipped": len(self.store.skipped)}

    async def next(self, tab: str) -> Issue | None:
        """The pair ``tab`` holds, or a newly chosen one; None when the corpus has no pair left."""
        async with self.lock:
            return await self._next(tab)

    async def answer(self, tab: str, ticket: str, pair_id: str, choice: str, note: str = "") -> Issue | None:
        """Record the answer to an issued pair (on disk before this returns), then give ``tab`` its next pair."""
        if choice not in CHOICES:
            raise InputError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        async with self.lock:
            issue = self.issued.get(ticket)
            if issue is None or issue.candidate.id != pair_id:
                raise Refused(f"pair {pair_id!r} was not issued by this server, or is already answered")
            self.store.add(self._row(issue, CHOICES[choice], note))
            del self.issued[ticket]
            if self.held.get(issue.tab) == ticket:
                del self.held[issue.tab]
            self.pool.finish(issue.candidate)
            return await self._next(tab)

    async def undo(self, tab: str, pair_id: str | None = None) -> Issue:
        """Take back the answer to ``pair_id`` (default: the last label) and show that pair again in ``tab``."""
        async with self.lock:
            if pair_id is not None and not self.store.holds(pair_id):
                raise Refused(f"pair {pair_id!r} has no answer to undo")
            row = self.store.remove(pair_id)
            if row is None:
                raise Refused("nothing to undo")
            self.pool.reopen(frozenset((row["a"], row["b"])))
            held = self.issued.pop(self.held.pop(tab, ""), None)
            if held is not None:
                self.pool.release(held.candidate)
            meta = row.get("metadata") or {}
            return self._issue(
                tab, self._candidate(row), str(meta.get("picked") or "undone"), str(meta.get("note") or "")
            )

    async def _next(self, tab: str) -> Issue | None:
        held = self.issued.get(self.held.get(tab, ""))
        if held is not None:
            return held
        choice = await self.selector.choose(self.pool.available(), self.store.pairs(), self.last_prompts)
        if choice is None:
            return None
        candidate, reason = choice
        return self._issue(tab, candidate, reason)

    def _issue(self, tab: str, candidate: Candidate, picked: str, note: str = "") -> Issue:
        self.pool.take(candidate)
        issue = Issue(secrets.token_urlsafe(16), candidate, picked, tab, self.clock(), note)
        self.issued[issue.ticket] = issue
        self.held[tab] = issue.ticket
        self.last_prompts = candidate.prompts
        return issue

    def _row(self, issue: Issue, preferred: str | None, note: str) -> dict[str, Any]:
        candidate = issue.candidate
        return {
            "id": candidate.id,
            "a": candidate.left.full,
            "b": candidate.right.full,
            "preferred": preferred,
            "domain": candidate.left.domain or candidate.right.domain,
            "source": self.source,
            "metadata": {
                "annotator": self.annotator,
                "seconds": round(max(self.clock() - issue.issued_at, 0.0), 1),
                "note": " ".join(str(note).split())[:NOTE_CHARS],
                "picked": issue.picked,
            },
        }

    def _candidate(self, row: dict[str, Any]) -> Candidate:
        """The candidate of a stored row: the corpus's texts, or texts rebuilt from the row (another corpus)."""
        ids = str(row["id"]).split("|", 1) if "|" in str(row["id"]) else [f"{row['id']}:a", f"{row['id']}:b"]
        left = self.pool.by_full.get(row["a"]) or Text(ids[0], row["a"], domain=row.get("domain"))
        right = self.pool.by_full.get(row["b"]) or Text(ids[1], row["b"], domain=row.get("domain"))
        return Candidate(left, right)
