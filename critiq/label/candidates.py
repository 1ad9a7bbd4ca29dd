"""The texts of a corpus and the candidate pairs drawn from them, as ``annotate`` draws pairs.

Rows that share a prompt are paired with each other (length-matched, by :func:`critiq.annotate.draw_pairs`); texts
without a prompt, or alone with theirs, are paired among themselves. Each text is in at most one candidate until
every text has been used; only then is the corpus paired anew, at random (length-matched pairing would give the
same pairs again), never repeating a finished pair. When random rounds find nothing new, the remaining pairs are
matched exhaustively: "no pair left" means every pair has been answered, after any number of restarts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from critiq.annotate import draw_pairs
from critiq.data.loaders import iter_examples
from critiq.data.models import Pair, Point
from critiq.data.sources import Source
from critiq.errors import InputError

log = logging.getLogger(__name__)

PROMPTED = "Prompt:\n{prompt}\n\nResponse:\n{response}"  # how a prompted text is stored in a pair (as dev pairs are)
NEW_ROUND_TRIES = 3


@dataclass(frozen=True)
class Text:
    """One corpus text: its ``body`` (the response, for prompt/response rows) and the ``prompt`` it answers."""

    id: str
    body: str
    prompt: str | None = None
    domain: str | None = None

    @property
    def full(self) -> str:
        """The text as a stored pair holds it: the prompt and the response together when there is a prompt."""
        return self.body if self.prompt is None else PROMPTED.format(prompt=self.prompt, response=self.body)


@dataclass(frozen=True)
class Candidate:
    """Two texts that may be shown as a pair: ``left`` is side ``a``, ``right`` side ``b``."""

    left: Text
    right: Text

    @property
    def id(self) -> str:
        return f"{self.left.id}|{self.right.id}"

    @property
    def key(self) -> frozenset[str]:
        """The pair's identity, whatever the order of its sides."""
        return frozenset((self.left.full, self.right.full))

    @property
    def prompt(self) -> str | None:
        """The shared prompt, or None (no prompt, or two different ones)."""
        return self.left.prompt if self.left.prompt == self.right.prompt else None

    @property
    def prompts(self) -> frozenset[str]:
        return frozenset(p for p in (self.left.prompt, self.right.prompt) if p is not None)

    def as_pair(self) -> Pair:
        """The unlabelled pair (whole texts, prompt included), as workers and scorers see it."""
        return Pair(id=self.id, a=self.left.full, b=self.right.full, domain=self.left.domain or self.right.domain)


def read_corpus(
    source: str | Source,
    *,
    text_field: str = "text",
    prompt_field: str = "prompt",
    max_texts: int | None = None,
    max_chars: int | None = None,
) -> list[Text]:
    """The distinct texts of ``source`` (anything the data readers read), in corpus order, at most ``max_texts``.

    Pointwise rows give one text each (``prompt_field`` names the prompt they answer, when they have one); pairwise
    rows give both their texts. Raises ``InputError`` for bad rows (named by the reader) and for fewer than two texts.
    """
    texts: list[Text] = []
    seen: set[str] = set()
    for text in _texts(iter_examples(source, max_chars=max_chars, text_field=text_field), prompt_field):
        if text.full in seen:
            continue
        seen.add(text.full)
        texts.append(text)
        if max_texts is not None and len(texts) >= max_texts:
            log.info("%s: using the first %d texts (`max_texts`)", _name(source), max_texts)
            break
    if len(texts) < 2:
        raise InputError(f"needs at least two distinct texts to pair, found {len(texts)}", source=_name(source))
    return texts


def _name(source: str | Source) -> str:
    return source if isinstance(source, str) else source.name


def _texts(examples: Iterable[Pair | Point], prompt_field: str) -> Iterator[Text]:
    for example in examples:
        prompt = example.metadata.get(prompt_field)
        prompt = prompt if isinstance(prompt, str) and prompt.strip() else None
        if isinstance(example, Pair):
            yield Text(f"{example.id}:a", example.a, prompt, example.domain)
            yield Text(f"{example.id}:b", example.b, prompt, example.domain)
        else:
            yield Text(example.id, example.text, prompt, example.domain)


def draw_candidates(texts: Sequence[Text], *, seed: int, length_matched: bool = True) -> list[Candidate]:
    """Disjoint candidate pairs over ``texts`` in a seeded random order: same prompt first, then the rest."""
    rng = random.Random(seed)
    groups: dict[str | None, list[Text]] = {}
    for text in texts:
        groups.setdefault(text.prompt, []).append(text)
    loose = list(groups.pop(None, []))
    for members in list(groups.values()):
        if len(members) == 1:
            loose.extend(members)
    rng.shuffle(loose)  # windows of the pairing become random samples of the corpus, not runs of it
    batches = [members for members in groups.values() if len(members) > 1] + [loose]
    candidates: list[Candidate] = []
    for members in batches:
        by_id = {text.id: text for text in members}
        points = [Point(id=text.id, text=text.body, domain=text.domain) for text in members]
        window = max(len(points), 2) if members is not loose else 1024
        for pair in draw_pairs(points, seed=rng.randrange(2**32), length_matched=length_matched, window=window):
            candidates.append(Candidate(by_id[pair.metadata["a_id"]], by_id[pair.metadata["b_id"]]))
    rng.shuffle(candidates)
    return candidates


class CandidatePool:
    """Candidates not yet shown: finished pairs (``done``) and texts on screen (``busy``) are left out.

    Texts of finished pairs are ``used`` for the current round; a new round starts when no unused texts pair up.
    """

    def __init__(self, texts: Sequence[Text], *, seed: int = 0, length_matched: bool = True) -> None:
        self.texts = list(texts)
        self.by_full = {text.full: text for text in self.texts}
        self.seed = seed
        self.length_matched = length_matched
        self.done: set[frozenset[str]] = set()
        self.used: set[str] = set()
        self.busy: set[str] = set()
        self.round = 0
        self._queue: list[Candidate] = []

    def mark_done(self, key: frozenset[str]) -> None:
        """A pair was answered (labelled or skipped): never offer it again, nor its texts in this round."""
        self.done.add(key)
        self.used |= key

    def reopen(self, key: frozenset[str]) -> None:
        """An answer was undone: the pair may be answered again."""
        self.done.discard(key)

    def available(self) -> list[Candidate]:
        """The candidates that may be issued now, in random order; empty when the corpus is exhausted."""
        self._queue = [c for c in self._queue if c.key not in self.done and not c.key & self.busy]
        if not self._queue:
            self._queue = self._refill()
        return list(self._queue)

    def take(self, candidate: Candidate) -> None:
        """``candidate`` is on screen: its texts are busy until it is answered or released."""
        self._queue = [c for c in self._queue if c != candidate]
        self.busy |= candidate.key

    def finish(self, candidate: Candidate) -> None:
        self.busy -= candidate.key
        self.mark_done(candidate.key)

    def release(self, candidate: Candidate) -> None:
        """``candidate`` left the screen unanswered: offer it first again."""
        self.busy -= candidate.key
        if candidate.key not in self.done:
            self._queue.insert(0, candidate)

    def _refill(self) -> list[Candidate]:
        fresh = [t for t in self.texts if t.full not in self.used and t.full not in self.busy]
        found = self._draw(fresh)
        tries = 0
        while not found and tries < NEW_ROUND_TRIES:
            tries += 1
            self.round += 1
            self.used = set()
            found = self._draw([t for t in self.texts if t.full not in self.busy])
            if found:
                log.info("every text has been shown: pairing the corpus anew (round %d)", self.round + 1)
        return found or self._leftover()

    def _leftover(self) -> list[Candidate]:
        """The pairs random rounds missed, matched greedily: empty only when no pair of free texts is unanswered.

        Pairs are those ``draw_candidates`` forms over the whole corpus (same prompt, or both without a shared one).
        It runs only once random rounds find nothing, i.e. when few pairs are left.
        """
        rng = random.Random(f"{self.seed}:{len(self.done)}")
        groups: dict[str | None, list[Text]] = {}
        for text in self.texts:
            groups.setdefault(text.prompt, []).append(text)
        loose = groups.pop(None, [])
        loose += [members[0] for members in groups.values() if len(members) == 1]
        found: list[Candidate] = []
        for members in [m for m in groups.values() if len(m) > 1] + [loose]:
            free = [text for text in members if text.full not in self.busy]
            rng.shuffle(free)
            taken: set[str] = set()
            for index, text in enumerate(free):
                if text.full in taken:
                    continue
                for other in free[index + 1 :]:
                    if other.full not in taken and frozenset((text.full, other.full)) not in self.done:
                        taken |= {text.full, other.full}
                        sides = (text, other) if rng.random() < 0.5 else (other, text)
                        found.append(Candidate(*sides))
                        break
        rng.shuffle(found)
        return found

    def _draw(self, texts: Sequence[Text]) -> list[Candidate]:
        # length-matched pairing is the same every time (neighbours by length): later rounds pair at random
        matched = self.length_matched and self.round == 0
        drawn = draw_candidates(texts, seed=self.seed * 1_000_003 + self.round, length_matched=matched)
        return [c for c in drawn if c.key not in self.done]
