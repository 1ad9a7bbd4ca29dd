"""Tokenising and BM25 keyword ranking for criteria search, with no dependency beyond the standard library."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")
_NAME_SPLIT = re.compile(r"[^a-z0-9]+")

_STOP_TEXT = """a an and any are as at be been but by can do does each for from has have how if in into is it its
may more most no not of on one or other so such than that the their them then there these they this those to was were
what when where whether which while who will with would you your"""
STOPWORDS = frozenset(_STOP_TEXT.split())


def stem(token: str) -> str:
    """Fold the commonest English plural endings so 'facts' matches 'fact' and 'queries' matches 'query'."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens without stop words or single letters, lightly stemmed; CJK characters are unigrams."""
    tokens = []
    for token in _TOKEN.findall(text.lower()):
        if token in STOPWORDS or (len(token) == 1 and token.isascii()):
            continue
        tokens.append(stem(token))
    return tokens


def name_words(name: str) -> frozenset[str]:
    """The word set of a criterion name: lowercase, split on '_' and any other non-alphanumeric character."""
    return frozenset(word for word in _NAME_SPLIT.split(name.lower()) if word)


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """Word-set Jaccard similarity; 0.0 when both sets are empty."""
    set_a, set_b = set(a), set(b)
    union = set_a | set_b
    return len(set_a & set_b) / len(union) if union else 0.0


class BM25:
    """Okapi BM25 over a fixed list of tokenised documents."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._tf = [Counter(doc) for doc in documents]
        self._len = [len(doc) for doc in documents]
        self._avg = (sum(self._len) / len(self._len)) if self._len else 0.0
        df: Counter[str] = Counter()
        for tf in self._tf:
            df.update(tf.keys())
        n = len(documents)
        self._idf = {term: math.log(1.0 + (n - count + 0.5) / (count + 0.5)) for term, count in df.items()}

    def scores(self, query: Iterable[str]) -> list[float]:
        """Score every document; repeated query terms count with logarithmic weight, so long queries stay balanced."""
        weights = {term: 1.0 + math.log(count) for term, count in Counter(query).items() if term in self._idf}
        results = []
        for tf, length in zip(self._tf, self._len, strict=True):
            norm = self.k1 * (1.0 - self.b + self.b * length / self._avg) if self._avg else self.k1
            score = 0.0
            for term, weight in weights.items():
                freq = tf.get(term, 0)
                if freq:
                    score += weight * self._idf[term] * freq * (self.k1 + 1.0) / (freq + norm)
            results.append(score)
        return results
