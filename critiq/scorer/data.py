"""Turn labelled pairs into (chosen, rejected) texts and split them for validation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from critiq.data.models import Pair
from critiq.errors import CritiqError

PairLike = Pair | Mapping[str, Any] | tuple[str, str]


@dataclass(frozen=True)
class Preferences:
    """Parallel lists: ``chosen[i]`` was preferred over ``rejected[i]``."""

    chosen: list[str]
    rejected: list[str]
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.chosen)

    def take(self, indices: np.ndarray) -> Preferences:
        return Preferences([self.chosen[i] for i in indices], [self.rejected[i] for i in indices])


def to_preferences(items: Iterable[PairLike]) -> Preferences:
    """Read ``Pair`` objects, ``{"a", "b", "preferred"}`` or ``{"chosen", "rejected"}`` dicts, or tuples.

    Pairs without a preference are skipped (and counted).
    """
    chosen: list[str] = []
    rejected: list[str] = []
    skipped = 0
    for index, item in enumerate(items):
        if isinstance(item, Pair):
            a, b, preferred = item.a, item.b, item.preferred
        elif isinstance(item, tuple) and len(item) == 2:
            a, b, preferred = item[0], item[1], "a"
        elif isinstance(item, Mapping):
            if "chosen" in item and "rejected" in item:
                a, b, preferred = item["chosen"], item["rejected"], "a"
            elif "a" in item and "b" in item:
                a, b, preferred = item["a"], item["b"], item.get("preferred")
            else:
                raise CritiqError(f"pair {index}: needs fields chosen/rejected or a/b/preferred")
        else:
            raise CritiqError(f"pair {index}: expected a Pair, a dict or a (chosen, rejected) tuple")
        if preferred not in ("a", "b"):
            if preferred is None:
                skipped += 1
                continue
            raise CritiqError(f"pair {index}: preferred must be 'a', 'b' or null, got {preferred!r}")
        if not isinstance(a, str) or not isinstance(b, str):
            raise CritiqError(f"pair {index}: texts must be strings")
        win, lose = (a, b) if preferred == "a" else (b, a)
        chosen.append(win)
        rejected.append(lose)
    return Preferences(chosen, rejected, skipped)


def split(prefs: Preferences, valid_fraction: float, seed: int) -> tuple[Preferences, Preferences]:
    """Shuffle with ``seed`` and hold out ``valid_fraction`` of the pairs (at least one when > 0)."""
    if not 0.0 <= valid_fraction < 1.0:
        raise CritiqError("valid_fraction must be in [0, 1)")
    n = len(prefs)
    if n == 0:
        raise CritiqError("no labelled pairs to fit on (every pair lacks a preference)")
    n_valid = round(n * valid_fraction)
    if valid_fraction > 0 and n >= 2:
        n_valid = max(1, n_valid)
    n_valid = min(n_valid, n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return prefs.take(order[n_valid:]), prefs.take(order[:n_valid])
