"""Wilson intervals against published values, and the shared percent and interval formatting."""

from __future__ import annotations

import pytest

from critiq.stats import interval_text, pct, wilson_interval

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17:857-872,
# Table I, method 3 (Wilson score interval without continuity correction), 95%.
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_wilson_interval_matches_published_values(counts: tuple[int, int], expected: tuple[float, float]) -> None:
    low, high = wilson_interval(*counts)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(12, 12) == (pytest.approx(0.7575, abs=1e-4), 1.0)
    low, high = wilson_interval(3, 10)
    mirrored_low, mirrored_high = wilson_interval(7, 10)
    assert (low, high) == (pytest.approx(1 - mirrored_high), pytest.approx(1 - mirrored_low))
    assert wilson_interval(7, 10, z=2.576)[0] < mirrored_low  # 99% is wider than 95%
    for correct, n in ((5, 4), (-1, 3), (0, -1)):
        with pytest.raises(ValueError, match="0 <= correct <= n"):
            wilson_interval(correct, n)


def test_percent_and_interval_text() -> None:
    assert pct(0.123) == "12.3%" and pct(1) == "100.0%" and pct(None) == "–"
    assert interval_text((0.2553, 0.3662)) == "[0.26, 0.37]"
    assert interval_text(None) == "–" and interval_text([0.1]) == "–"


def test_wilson_interval_is_scipys() -> None:
    import math

    from scipy.stats import binomtest

    for n in (1, 2, 7, 30, 221, 5000):
        for correct in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for z in (1.0, 1.96, 2.576):
                ci = binomtest(correct, n).proportion_ci(confidence_level=math.erf(z / math.sqrt(2)), method="wilson")
                expected = (max(0.0, float(ci.low)), min(1.0, float(ci.high)))
                assert wilson_interval(correct, n, z) == pytest.approx(expected, abs=1e-12), (correct, n, z)
