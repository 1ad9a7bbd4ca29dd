"""Proportions shared across critiq: their Wilson interval and how they are written."""

from __future__ import annotations

import math
from collections.abc import Sequence

NO_VALUE = "–"


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``correct / n``; ``n == 0`` gives ``(0.0, 1.0)``.

    ``z``: the normal quantile of the two-sided level (1.96 for 95%). The closed form scipy's
    ``binomtest(correct, n).proportion_ci(method="wilson")`` computes (the tests compare the two): importing
    ``scipy.stats`` costs every ``critiq mine`` about 1.5 s.
    """
    if n < 0 or correct < 0 or correct > n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    z2 = z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def pct(value: float | None) -> str:
    """``12.3%``, or a dash for no value."""
    return NO_VALUE if value is None else f"{value:.1%}"


def interval_text(bounds: Sequence[float] | None) -> str:
    """``[0.25, 0.37]``, or a dash for no interval."""
    if bounds is None or len(bounds) != 2:
        return NO_VALUE
    low, high = bounds
    return f"[{low:.2f}, {high:.2f}]"
