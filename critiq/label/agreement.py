"""Agreement between annotators on the pairs that more than one of them labelled.

A pair is the same pair whatever its id or side order (its two texts); each annotator's answer is read as "a" or
"b" in the order of the first file that holds the pair. For every two annotators: ``n`` shared pairs, raw agreement
and Cohen's kappa (scikit-learn); with three or more annotators, also all their comparisons pooled.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critiq.data.loaders import load_pairs
from critiq.errors import CritiqError

POOLED = "all"


@dataclass(frozen=True)
class Agreement:
    """How ``first`` and ``second`` agree on ``n`` pairs both labelled (kappa None where it is undefined)."""

    first: str
    second: str
    n: int
    raw: float
    kappa: float | None


def read_answers(files: Sequence[str | os.PathLike[str]]) -> dict[str, dict[frozenset[str], str]]:
    """annotator → pair (its two texts) → the preferred side, ``a`` or ``b``, in the first file's side order.

    The annotator is ``metadata.annotator`` of a row, else the file's name; a later answer to the same pair by the
    same annotator replaces an earlier one.
    """
    sides: dict[frozenset[str], str] = {}  # pair → its text "a" in the first file that holds it
    answers: dict[str, dict[frozenset[str], str]] = {}
    for file in files:
        for pair in load_pairs(file, require_labels=True):
            key = frozenset((pair.a, pair.b))
            first_a = sides.setdefault(key, pair.a)
            winner = pair.a if pair.preferred == "a" else pair.b
            name = str(pair.metadata.get("annotator") or Path(file).stem)
            answers.setdefault(name, {})[key] = "a" if winner == first_a else "b"
    return answers


def agreement(files: Sequence[str | os.PathLike[str]]) -> list[Agreement]:
    """One :class:`Agreement` per two annotators who share pairs (then the pooled one, for three or more)."""
    from sklearn.metrics import cohen_kappa_score

    answers = read_answers(files)
    results: list[Agreement] = []
    pooled: tuple[list[str], list[str]] = ([], [])
    for first, second in itertools.combinations(sorted(answers), 2):
        shared = sorted(answers[first].keys() & answers[second].keys(), key=sorted)
        if not shared:
            continue
        left = [answers[first][key] for key in shared]
        right = [answers[second][key] for key in shared]
        pooled[0].extend(left)
        pooled[1].extend(right)
        results.append(Agreement(first, second, len(shared), _raw(left, right), _kappa(cohen_kappa_score, left, right)))
    if not results:
        names = ", ".join(sorted(answers)) or "none"
        raise CritiqError(f"no pair was labelled by more than one annotator (annotators: {names})")
    if len(results) > 1:
        left, right = pooled
        results.append(Agreement(POOLED, POOLED, len(left), _raw(left, right), _kappa(cohen_kappa_score, left, right)))
    return results


def _raw(left: Sequence[str], right: Sequence[str]) -> float:
    return sum(x == y for x, y in zip(left, right, strict=True)) / len(left)


def _kappa(score: Callable[..., Any], left: Sequence[str], right: Sequence[str]) -> float | None:
    """Cohen's kappa; None when chance agreement is 1 (both always gave the same side), where it is undefined."""
    if len(set(left) | set(right)) < 2:
        return None
    value = float(score(left, right, labels=["a", "b"]))
    return None if math.isnan(value) else value
