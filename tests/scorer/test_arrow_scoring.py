"""The n-gram scorer on Arrow columns: the same scores as on Python strings, from the column's buffers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from critiq.scorer import make_scorer
from critiq.scorer.features import Featurizer

TEXTS = [
    "def add(a, b):\n    # add two numbers\n    return a + b\n",
    "",
    "x",
    "Ünïcødé — 日本語のテキスト, emoji 🙂 and\ttabs\r\nCRLF lines",
    "ALL CAPS TEXT WITH DIGITS 12345 and punctuation!!! ... ???",
    " leading and trailing spaces ",
    "a" * 5000,
]


@pytest.fixture(scope="module")
def scorer() -> Any:
    pairs = [{"chosen": t + " # comment", "rejected": t} for t in TEXTS[:5]] * 4
    model = make_scorer("ngram", bits=12)
    model.fit(pairs, valid_fraction=0.0)
    return model


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_arrow_scores_equal_string_scores(scorer: Any, kind: pa.DataType) -> None:
    texts = TEXTS * 40  # several featurizer chunks
    column = pa.array(texts, type=kind)
    expected = scorer.score(texts)
    np.testing.assert_allclose(scorer.score_arrow(column), expected, rtol=1e-5, atol=1e-6)
    sliced = column.slice(3, 100)  # an array that starts inside its buffers
    np.testing.assert_allclose(scorer.score_arrow(sliced), expected[3:103], rtol=1e-5, atol=1e-6)
    chunked = pa.chunked_array([column.slice(0, 7), column.slice(7)])
    np.testing.assert_allclose(scorer.score_arrow(chunked), expected, rtol=1e-5, atol=1e-6)


def test_nulls_score_as_empty_texts(scorer: Any) -> None:
    column = pa.array(["some text", None, "more text"])
    expected = scorer.score(["some text", "", "more text"])
    np.testing.assert_allclose(scorer.score_arrow(column), expected, rtol=1e-5)


def test_arrow_features_equal_string_features() -> None:
    featurizer = Featurizer(bits=12, char_ngrams=(3, 4))
    [(_, from_strings)] = list(featurizer.chunks(TEXTS))
    [(_, from_arrow)] = list(featurizer.arrow_chunks(pa.array(TEXTS)))
    for field in ("rows", "cols", "values", "dense"):
        np.testing.assert_array_equal(getattr(from_arrow, field), getattr(from_strings, field))


def test_score_corpus_reads_the_column_and_truncates_by_characters(scorer: Any, tmp_path: Path) -> None:
    from critiq.score.corpus import score_corpus

    pq.write_table(pa.table({"text": TEXTS, "id": list(range(len(TEXTS)))}), tmp_path / "corpus.parquet")
    score_corpus(tmp_path / "corpus.parquet", scorer, tmp_path / "scored.parquet", max_chars=10)
    scores = pq.read_table(tmp_path / "scored.parquet").column("score").to_numpy()
    expected = scorer.score([t[:10] for t in TEXTS])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
