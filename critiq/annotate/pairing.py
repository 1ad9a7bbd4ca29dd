"""Draw pairs from an unlabeled corpus, streaming: random pairs, optionally length-matched (as the paper did)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from critiq.data.models import Example, Pair, Point
from critiq.errors import InputError


def documents(examples: Iterable[Example]) -> Iterator[Point]:
    """The corpus's documents, streamed; a pair in it is an :class:`~critiq.errors.InputError`."""
    for example in examples:
        if not isinstance(example, Point):
            raise InputError(f"row {example.id!r} is a pair: a corpus to draw pairs from holds documents ({{text}})")
        yield example


def draw_pairs(
    points: Iterable[Example],
    *,
    seed: int = 0,
    length_matched: bool = True,
    window: int = 1024,
    max_pairs: int | None = None,
) -> Iterator[Pair]:
    """Pair documents within windows of ``window`` documents, so memory stays bounded on any corpus size.

    ``points`` are documents (a :class:`~critiq.data.models.Pair` among them is an input error). Length-matched
    pairing sorts a window by length and pairs neighbours (in random order), which keeps length from deciding the
    label; otherwise the window is shuffled and paired in order. Each document is used once.
    """
    rng = random.Random(seed)
    made = 0
    buffer: list[Point] = []

    def flush(chunk: list[Point]) -> Iterator[Pair]:
        nonlocal made
        if length_matched:
            chunk.sort(key=lambda p: (len(p.text), p.id))
        else:
            rng.shuffle(chunk)
        couples = [(chunk[i], chunk[i + 1]) for i in range(0, len(chunk) - 1, 2)]
        rng.shuffle(couples)
        for left, right in couples:
            if max_pairs is not None and made >= max_pairs:
                return
            if rng.random() < 0.5:
                left, right = right, left
            made += 1
            yield Pair(
                id=f"{left.id}|{right.id}",
                a=left.text,
                b=right.text,
                domain=left.domain or right.domain,
                metadata={"a_id": left.id, "b_id": right.id},
            )

    for point in documents(points):
        buffer.append(point)
        if len(buffer) >= window:
            yield from flush(buffer)
            buffer = []
            if max_pairs is not None and made >= max_pairs:
                return
    if buffer:
        yield from flush(buffer)
