"""A scorer saved before the featurizer was made faster loads and scores as it did (issue 22: same features).

``data/ngram_saved`` is an n-gram scorer (bits 10, character 3-, 4- and 5-grams) saved at commit a0cce90, and
``data/ngram_saved_expected.npz`` its features of ``TEXTS`` and its scores, both written by that commit's code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from critiq.scorer import Scorer

DATA = Path(__file__).parent / "data"
PAIRS_SEED = 3
TEXTS = [
    "",
    "x",
    " ",
    "def add(a, b):\n    # add two numbers\n    return a + b\n",
    "Ünïcødé — 日本語のテキスト, emoji 🙂 and\ttabs\r\nCRLF lines",
    "ALL CAPS TEXT WITH DIGITS 12345 and punctuation!!! ... ???",
    "  leading, trailing and  double  spaces  ",
    "snake_case_names and CamelCase and x1y2z3 tokens;\n\n\nblank lines\x0bvertical\x0cform feed",
    "word " * 300,
    "abc" * 1700,
]


def training_pairs() -> list[dict[str, str]]:
    """Pairs whose chosen side has a comment line more (what the saved scorer was trained on)."""
    rng = np.random.default_rng(PAIRS_SEED)
    words = ["alpha", "beta", "gamma", "delta", "x = 1", "return y", "for i in range(3):", "Ünï", "日本"]
    pairs = []
    for _ in range(200):
        body = " ".join(rng.choice(words, size=int(rng.integers(5, 30))))
        pairs.append({"chosen": f"# why\n{body}", "rejected": body})
    return pairs


def test_a_scorer_saved_before_has_the_same_features_and_scores() -> None:
    scorer = Scorer.load(DATA / "ngram_saved")
    expected = np.load(DATA / "ngram_saved_expected.npz")
    feats = scorer.featurizer.transform(TEXTS)  # type: ignore[attr-defined]
    for field in ("rows", "cols", "values", "dense"):
        np.testing.assert_array_equal(getattr(feats, field), expected[field], err_msg=field)
    np.testing.assert_allclose(scorer.score(TEXTS), expected["scores"], rtol=1e-6, atol=1e-7)
    column = pa.array(TEXTS * 3, type=pa.large_string())
    arrow = scorer.score_arrow(column)  # type: ignore[attr-defined]
    np.testing.assert_allclose(arrow, np.tile(expected["scores"], 3), rtol=1e-6, atol=1e-7)
