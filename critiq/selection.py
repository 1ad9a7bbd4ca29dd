"""Choose the best part of a scored corpus: Gumbel top-k sampling ∝ exp(score / temperature).

Adding Gumbel noise to ``score / τ`` and taking the k largest keys draws k items without
replacement with probabilities ∝ exp(score / τ) (as in QuRating). τ = 0 is plain top-k.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from critiq.errors import CritiqError

logger = logging.getLogger(__name__)


def selection_keys(scores: np.ndarray, temperature: float, seed: int | None) -> np.ndarray:
    """Keys to rank by: ``score / τ + Gumbel noise``, or the scores themselves when τ = 0."""
    if temperature == 0:
        return scores.astype(np.float64)
    rng = np.random.default_rng(seed)
    return scores.astype(np.float64) / temperature + rng.gumbel(size=len(scores))


def _validate(
    n: int,
    top_k: int | None,
    fraction: float | None,
    tokens: int | None,
    token_counts: Sequence[int] | np.ndarray | None,
    temperature: float,
) -> None:
    chosen = [
        name
        for name, value in (("`top_k`", top_k), ("`fraction`", fraction), ("`tokens`", tokens))
        if value is not None
    ]
    if len(chosen) != 1:
        given = f" (got {', '.join(chosen)})" if chosen else ""
        raise CritiqError(f"choose exactly one of `top_k`, `fraction`, `tokens`{given}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k <= 0):
        raise CritiqError("`top_k` must be > 0")
    if fraction is not None and not (math.isfinite(fraction) and 0 < fraction <= 1):
        raise CritiqError("`fraction` must be in (0, 1]")
    if tokens is not None:
        if int(tokens) != tokens or tokens <= 0:
            raise CritiqError("`tokens` must be > 0")
        if token_counts is None:
            raise CritiqError("`tokens` needs token counts for every item")
        if len(token_counts) != n:
            raise CritiqError(f"`tokens`: got {len(token_counts)} token counts for {n} items")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise CritiqError("`temperature` must be >= 0")


def select(
    scores: Sequence[float] | np.ndarray,
    *,
    top_k: int | None = None,
    fraction: float | None = None,
    tokens: int | None = None,
    token_counts: Sequence[int] | np.ndarray | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
) -> np.ndarray:
    """Indices of the selected items, best key first.

    Give exactly one budget: ``top_k`` items, a ``fraction`` of the items (rounded up), or a
    ``tokens`` budget (items are taken in key order until their ``token_counts`` reach it; the item
    that crosses the budget is included). ``temperature`` > 0 samples ∝ exp(score / temperature);
    the same ``seed`` gives the same selection. Ties in key go to the lower index.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    n = len(values)
    _validate(n, top_k, fraction, tokens, token_counts, temperature)
    if np.isnan(values).any():
        raise CritiqError("scores contain NaN; rescore the corpus")
    keys = selection_keys(values, temperature, seed)
    order = np.lexsort((np.arange(n), -keys))  # key descending, then index ascending
    if top_k is not None:
        if top_k > n:
            logger.warning("top_k=%d exceeds the %d items; selecting all", top_k, n)
        return order[: int(top_k)]
    if fraction is not None:
        return order[: math.ceil(fraction * n - 1e-9)]
    assert tokens is not None  # _validate: exactly one budget is given
    counts = np.asarray(token_counts, dtype=np.int64).ravel()
    if (counts < 0).any():
        raise CritiqError("`tokens`: token counts must be >= 0")
    cumulative = np.cumsum(counts[order])
    stop = int(np.searchsorted(cumulative, tokens, side="left")) + 1
    if stop > n:
        logger.warning(
            "tokens=%d exceeds the corpus total of %d tokens; selecting all", tokens, int(cumulative[-1]) if n else 0
        )
    return order[: min(stop, n)]
