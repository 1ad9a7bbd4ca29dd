"""Proportions shared across critiq: their Wilson interval (scipy's) and how they are written."""

from __future__ import annotations

import math
from collections.abc import Sequence

NO_VALUE = "–"


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``correct / n``; ``n == 0`` gives ``(0.0, 1.0)``.

    ``z``: the normal quantile of the two-sided level (1.96 for 95%). Computed by scipy's ``binomtest``.
    """
    if n < 0 or correct < 0 or correct > n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest  # scipy.stats takes a second to import: only when an interval is needed

    bounds = binomtest(correct, n).proportion_ci(confidence_level=math.erf(z / math.sqrt(2)), method="wilson")
    return (max(0.0, float(bounds.low)), min(1.0, float(bounds.high)))


def pct(value: float | None) -> str:
    """``12.3%``, or a dash for no value."""
    return NO_VALUE if value is None else f"{value:.1%}"


def interval_text(bounds: Sequence[float] | None) -> str:
    """``[0.25, 0.37]``, or a dash for no interval."""
    if bounds is None or len(bounds) != 2:
        return NO_VALUE
    low, high = bounds
    return f"[{low:.2f}, {high:.2f}]"
