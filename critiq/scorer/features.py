"""Hashed n-gram features computed with vectorised numpy: no Python loop over tokens.

Every substring hash is a polynomial hash mod 2**32 taken from prefix sums, so word tokens, word
bigrams and within-word character n-grams of a whole batch are hashed with a few array operations.
Each feature family owns ``2**bits`` buckets; counts are log-scaled and each family is L2-normalised.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

_P = np.uint32(0x01000193)  # FNV prime: odd, so invertible mod 2**32
_Q = np.uint32(pow(0x01000193, -1, 2**32))
_MIX = np.uint32(0x9E3779B1)  # Fibonacci hashing multiplier
_SALTS = (np.arange(1, 17, dtype=np.uint64) * 0x85EBCA6B % 2**32).astype(np.uint32)  # one per feature family
_CHUNK_BYTES = 1 << 17  # featurise ~128 KB of text at a time: the working arrays stay in cache

_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[ord("A") : ord("Z") + 1] += 32
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 32]] = True
_WORD = np.zeros(256, dtype=bool)
for _lo, _hi in (("0", "9"), ("a", "z"), ("A", "Z")):
    _WORD[ord(_lo) : ord(_hi) + 1] = True
_WORD[ord("_")] = True
_WORD[128:] = True  # UTF-8 continuation and lead bytes belong to words
_PUNCT = ~(_WORD | _SPACE)
_OTHER, _BLANK, _NEWLINE, _PUNCT_CLASS, _DIGIT, _UPPER, _NON_ASCII = range(7)
_CLASS = np.full(256, _OTHER, dtype=np.int64)  # one class per byte, for the length/shape statistics
_CLASS[_SPACE] = _BLANK
_CLASS[10] = _NEWLINE
_CLASS[_PUNCT] = _PUNCT_CLASS
_CLASS[ord("0") : ord("9") + 1] = _DIGIT
_CLASS[ord("A") : ord("Z") + 1] = _UPPER
_CLASS[128:] = _NON_ASCII

DENSE_NAMES = (
    "log_chars",
    "log_tokens",
    "log_lines",
    "mean_word_len",
    "mean_line_len",
    "frac_space",
    "frac_newline",
    "frac_punct",
    "frac_digit",
    "frac_upper",
    "frac_non_ascii",
    "unique_token_ratio",
)


@dataclass(frozen=True)
class HashedFeatures:
    """Sparse hashed features of a batch: entry ``i`` adds ``values[i]`` at column ``cols[i]`` of row ``rows[i]``."""

    rows: np.ndarray  # int32, sorted
    cols: np.ndarray  # int32
    values: np.ndarray  # float32
    dense: np.ndarray  # float32, shape (n, len(DENSE_NAMES)), not standardised
    n: int


class Featurizer:
    """Word uni/bigrams + character n-grams within words, hashed into ``families * 2**bits`` columns."""

    def __init__(self, bits: int = 18, char_ngrams: Sequence[int] = (4,), lowercase: bool = True) -> None:
        if not 10 <= bits <= 22:
            raise ValueError("bits must be in [10, 22]")
        self.bits = bits
        self.char_ngrams = tuple(int(n) for n in char_ngrams)
        if len(self.char_ngrams) > 8 or any(not 2 <= n <= 16 for n in self.char_ngrams):
            raise ValueError("char_ngrams: at most 8 sizes, each in [2, 16]")
        self.lowercase = lowercase
        self.n_families = 2 + len(self.char_ngrams)
        self.n_hashed = self.n_families << bits
        self._ppow = np.ones(1, dtype=np.uint32)
        self._qpow = np.ones(1, dtype=np.uint32)

    @property
    def n_features(self) -> int:
        return self.n_hashed + len(DENSE_NAMES)

    def config(self) -> dict[str, object]:
        return {"bits": self.bits, "char_ngrams": list(self.char_ngrams), "lowercase": self.lowercase}

    def chunks(self, texts: Sequence[str]) -> Iterator[tuple[int, HashedFeatures]]:
        """(first row, features) of consecutive slices of ``texts`` of about 128 KB each (rows are slice-local)."""
        start, total = 0, len(texts)
        while start < total:
            stop, size = start, 0
            while stop < total and (stop == start or size < _CHUNK_BYTES) and stop - start < 2048:
                size += len(texts[stop]) + 1
                stop += 1
            yield start, self._transform_chunk(texts[start:stop])
            start = stop

    def transform(self, texts: Sequence[str]) -> HashedFeatures:
        """Featurise all of ``texts`` into one set of sparse entries (rows index ``texts``)."""
        parts = [(start, feats) for start, feats in self.chunks(texts)]
        if not parts:
            empty = np.zeros(0, dtype=np.int32)
            return HashedFeatures(empty, empty, np.zeros(0, np.float32), np.zeros((0, len(DENSE_NAMES)), np.float32), 0)
        return HashedFeatures(
            rows=np.concatenate([feats.rows + np.int32(start) for start, feats in parts]),
            cols=np.concatenate([feats.cols for _, feats in parts]),
            values=np.concatenate([feats.values for _, feats in parts]),
            dense=np.concatenate([feats.dense for _, feats in parts]),
            n=len(texts),
        )

    def to_csr(self, feats: HashedFeatures, dense: np.ndarray) -> object:
        """A scipy CSR matrix of the hashed part followed by the (already standardised) dense columns."""
        from scipy import sparse

        n_dense = dense.shape[1]
        dense_rows = np.repeat(np.arange(feats.n, dtype=np.int32), n_dense)
        dense_cols = np.tile(np.arange(self.n_hashed, self.n_hashed + n_dense, dtype=np.int32), feats.n)
        rows = np.concatenate([feats.rows, dense_rows])
        cols = np.concatenate([feats.cols, dense_cols])
        vals = np.concatenate([feats.values, dense.astype(np.float32).ravel()])
        return sparse.csr_matrix((vals, (rows, cols)), shape=(feats.n, self.n_features), dtype=np.float32)

    def _powers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self._ppow) < n:
            size = max(n, 2 * len(self._ppow))
            self._ppow = np.cumprod(np.full(size, _P, dtype=np.uint32), dtype=np.uint32) * _Q
            self._ppow[0] = 1
            self._qpow = np.cumprod(np.full(size, _Q, dtype=np.uint32), dtype=np.uint32) * _P
            self._qpow[0] = 1
        return self._ppow, self._qpow

    def _bucket(self, hashes: np.ndarray, family: int) -> np.ndarray:
        mixed = (hashes ^ _SALTS[family]) * _MIX
        mixed ^= mixed >> np.uint32(15)
        mixed *= _MIX
        buckets: np.ndarray = (mixed >> np.uint32(32 - self.bits)).astype(np.int32) + np.int32(family << self.bits)
        return buckets

    def _transform_chunk(self, texts: Sequence[str]) -> HashedFeatures:
        n = len(texts)
        # Each document is " " + text; the final " " closes the last one.
        encoded = [t.encode("utf-8", "replace") for t in texts]
        raw = np.frombuffer(b" " + b" ".join(encoded) + b" ", dtype=np.uint8)
        byte_lens = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
        text = _LOWER[raw] if self.lowercase else raw
        length = len(text)
        ppow, qpow = self._powers(length + 1)
        prefix = np.zeros(length + 1, dtype=np.uint32)
        np.cumsum(text.astype(np.uint32) * qpow[:length], dtype=np.uint32, out=prefix[1:])

        def substring_hash(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
            hashes: np.ndarray = (prefix[hi] - prefix[lo]) * ppow[hi - 1]
            return hashes

        is_space = _SPACE[raw]
        is_word = _WORD[raw]
        is_punct = _PUNCT[raw]
        prev_word = np.concatenate(([False], is_word[:-1]))
        next_word = np.concatenate((is_word[1:], [False]))
        tok_lo = np.flatnonzero(is_punct | (is_word & ~prev_word))
        tok_hi = np.flatnonzero(is_punct | (is_word & ~next_word)) + 1
        pos_doc = np.repeat(np.arange(n, dtype=np.int32), byte_lens + 1)
        tok_doc = pos_doc[tok_lo]
        tok_hash = substring_hash(tok_lo, tok_hi)

        rows = [tok_doc]
        cols = [self._bucket(tok_hash, 0)]
        same_doc = tok_doc[1:] == tok_doc[:-1]
        bigram = tok_hash[:-1][same_doc] * _P + (tok_hash[1:][same_doc] ^ _SALTS[-1])
        rows.append(tok_doc[1:][same_doc])
        cols.append(self._bucket(bigram, 1))

        space_cum = np.concatenate(([0], np.cumsum(is_space, dtype=np.int32)))
        for family, size in enumerate(self.char_ngrams, start=2):
            if size > length:
                continue
            lo = np.arange(length - size + 1, dtype=np.int64)
            # keep n-grams with no whitespace inside (ends may be spaces: word boundaries)
            keep = space_cum[lo + size - 1] == space_cum[lo + 1]
            keep &= ~(is_space[lo] & is_space[lo + size - 1])
            lo = lo[keep]
            rows.append(pos_doc[lo])
            cols.append(self._bucket(substring_hash(lo, lo + size), family))

        all_rows = np.concatenate(rows)
        all_cols = np.concatenate(cols)
        key_type = np.uint32 if n * self.n_hashed < 2**32 else np.int64  # 32-bit keys sort twice as fast
        keys = all_rows.astype(key_type) * key_type(self.n_hashed) + all_cols.astype(key_type)
        keys.sort()
        first = np.concatenate(([True], keys[1:] != keys[:-1]))
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(keys))).astype(np.float32)
        unique = keys[starts]
        u_rows = (unique // self.n_hashed).astype(np.int32)
        u_cols = (unique % self.n_hashed).astype(np.int32)
        values = np.log1p(counts)
        segment = u_rows.astype(np.int64) * self.n_families + (u_cols >> self.bits)
        norms = np.sqrt(np.bincount(segment, weights=values * values, minlength=n * self.n_families))
        values = values / (norms[segment] * np.sqrt(self.n_families))

        dense = self._dense(texts, raw, pos_doc, byte_lens, tok_doc, u_rows, u_cols)
        return HashedFeatures(u_rows, u_cols, values.astype(np.float32), dense, n)

    def _dense(
        self,
        texts: Sequence[str],
        raw: np.ndarray,
        pos_doc: np.ndarray,
        byte_lens: np.ndarray,
        tok_doc: np.ndarray,
        u_rows: np.ndarray,
        u_cols: np.ndarray,
    ) -> np.ndarray:
        n = len(texts)
        classes = np.bincount(pos_doc * 8 + _CLASS[raw[: len(pos_doc)]], minlength=n * 8).reshape(n, 8)
        classes = classes.astype(np.float64)
        newlines = classes[:, _NEWLINE]
        spaces = classes[:, _BLANK] + newlines - 1.0  # the separator before each document
        punct, digits = classes[:, _PUNCT_CLASS], classes[:, _DIGIT]
        upper, non_ascii = classes[:, _UPPER], classes[:, _NON_ASCII]
        chars = np.fromiter((len(t) for t in texts), dtype=np.float64, count=n)
        blen = np.maximum(byte_lens.astype(np.float64), 1.0)
        tokens = np.bincount(tok_doc, minlength=n).astype(np.float64)
        unigram = (u_cols >> self.bits) == 0
        unique_tokens = np.bincount(u_rows[unigram], minlength=n).astype(np.float64)
        lines = newlines + 1.0
        word_bytes = np.maximum(blen - spaces - punct, 0.0)
        word_tokens = np.maximum(tokens - punct, 1.0)
        dense = np.stack(
            [
                np.log1p(chars),
                np.log1p(tokens),
                np.log1p(lines),
                word_bytes / word_tokens,
                np.log1p(blen / lines),
                spaces / blen,
                newlines / blen,
                punct / blen,
                digits / blen,
                upper / blen,
                non_ascii / blen,
                unique_tokens / np.maximum(tokens, 1.0),
            ],
            axis=1,
        )
        return dense.astype(np.float32)
