"""Hashed n-gram features computed with vectorised numpy: no Python loop over tokens.

Every substring hash is a polynomial hash mod 2**32 taken from prefix sums, so word tokens, word
bigrams and within-word character n-grams of a whole batch are hashed with a few array operations.
Each feature family owns ``2**bits`` buckets; counts are log-scaled and each family is L2-normalised.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_P = np.uint32(0x01000193)  # FNV prime: odd, so invertible mod 2**32
_Q = np.uint32(pow(0x01000193, -1, 2**32))
_MIX = np.uint32(0x9E3779B1)  # Fibonacci hashing multiplier
_SALTS = (np.arange(1, 17, dtype=np.uint64) * 0x85EBCA6B % 2**32).astype(np.uint32)  # one per feature family
_CHUNK_BYTES = 1 << 17  # featurise ~128 KB of text at a time: the working arrays stay in cache
_CHUNK_DOCS = 2048

_OTHER, _BLANK, _NEWLINE, _PUNCT_CLASS, _DIGIT, _UPPER, _LEAD, _CONTINUATION = range(8)
_CLASS = np.full(256, _PUNCT_CLASS, dtype=np.uint8)  # one class per byte, for the length/shape statistics
_CLASS[[9, 11, 12, 13, 32]] = _BLANK
_CLASS[10] = _NEWLINE
_CLASS[ord("a") : ord("z") + 1] = _OTHER
_CLASS[ord("_")] = _OTHER
_CLASS[ord("0") : ord("9") + 1] = _DIGIT
_CLASS[ord("A") : ord("Z") + 1] = _UPPER
_CLASS[0xC0:] = _LEAD  # the first byte of a non-ASCII character
_CLASS[0x80:0xC0] = _CONTINUATION  # UTF-8 continuation bytes: not the start of a character

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
            while stop < total and (stop == start or size < _CHUNK_BYTES) and stop - start < _CHUNK_DOCS:
                size += len(texts[stop]) + 1
                stop += 1
            yield start, self._transform_chunk(texts[start:stop])
            start = stop

    def arrow_chunks(self, array: Any) -> Iterator[tuple[int, HashedFeatures]]:
        """Like :meth:`chunks` for a pyarrow string array (or chunked array) without nulls: its UTF-8 buffers are
        featurised as they are, with no Python string made per row."""
        import pyarrow as pa

        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        first = 0
        for chunk in chunks:
            offsets = _offsets(chunk)
            start, total = 0, len(chunk)
            while start < total:
                stop = int(np.searchsorted(offsets, offsets[start] + _CHUNK_BYTES, side="left"))
                stop = min(max(stop, start + 1), start + _CHUNK_DOCS, total)
                raw, byte_lens = _join_arrow(chunk.slice(start, stop - start))
                yield first + start, self._featurize(raw, byte_lens)
                start = stop
            first += total

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
        mixed >>= np.uint32(32 - self.bits)
        mixed += np.uint32(family << self.bits)
        buckets: np.ndarray = mixed.view(np.int32)  # below 2**31: the same numbers, no copy
        return buckets

    def _transform_chunk(self, texts: Sequence[str]) -> HashedFeatures:
        # Each document is " " + text; the final " " closes the last one. One encode for the chunk; a text's
        # byte length is its length when it is ASCII (str.isascii is a flag check), else that of its encoding.
        raw = np.frombuffer((" " + " ".join(texts) + " ").encode("utf-8", "replace"), dtype=np.uint8)
        lengths = (len(t) if t.isascii() else len(t.encode("utf-8", "replace")) for t in texts)
        return self._featurize(raw, np.fromiter(lengths, dtype=np.int64, count=len(texts)))

    def _featurize(self, raw: np.ndarray, byte_lens: np.ndarray) -> HashedFeatures:
        """Features of the documents laid out in ``raw`` as " " + doc + " " + doc ... + " " (UTF-8 bytes)."""
        n = len(byte_lens)
        text = _lower(raw) if self.lowercase else raw
        length = len(text)
        ppow, qpow = self._powers(length + 1)
        prefix = np.zeros(length + 1, dtype=np.uint32)
        np.cumsum(text * qpow[:length], dtype=np.uint32, out=prefix[1:])

        is_space = (raw == 32) | ((raw - np.uint8(9)) < np.uint8(5))  # comparisons: faster than a table lookup
        is_word = (
            (raw >= 128)  # UTF-8 lead and continuation bytes belong to words
            | ((raw - np.uint8(48)) < np.uint8(10))
            | (((raw | np.uint8(32)) - np.uint8(97)) < np.uint8(26))
            | (raw == 95)
        )
        is_punct = ~(is_word | is_space)
        tok_start = is_punct.copy()  # a token: one punctuation byte, or a run of word bytes
        tok_start[0] |= is_word[0]
        tok_start[1:] |= is_word[1:] & ~is_word[:-1]
        tok_end = is_punct.copy()
        tok_end[:-1] |= is_word[:-1] & ~is_word[1:]
        tok_lo = np.flatnonzero(tok_start)
        tok_hi = np.flatnonzero(tok_end) + 1
        bounds = np.zeros(n + 1, dtype=np.int64)  # doc i is raw[bounds[i]:bounds[i + 1]], its separator first
        np.cumsum(byte_lens + 1, out=bounds[1:])
        pos_doc = np.repeat(np.arange(n, dtype=np.int32), byte_lens + 1)
        tok_doc = pos_doc[tok_lo]
        tok_hash = (prefix[tok_hi] - prefix[tok_lo]) * ppow[tok_hi - 1]

        rows = [tok_doc]
        cols = [self._bucket(tok_hash, 0)]
        same_doc = tok_doc[1:] == tok_doc[:-1]
        bigram = np.compress(same_doc, tok_hash[:-1]) * _P + (np.compress(same_doc, tok_hash[1:]) ^ _SALTS[-1])
        rows.append(np.compress(same_doc, tok_doc[1:]))
        cols.append(self._bucket(bigram, 1))

        for family, size in enumerate(self.char_ngrams, start=2):
            count = length - size + 1  # n-grams starting at 0 .. length - size: slices, no index arrays
            if count <= 0:
                continue
            # keep n-grams with no whitespace inside (ends may be spaces: word boundaries)
            keep = ~(is_space[:count] & is_space[size - 1 : size - 1 + count])
            for inner in range(1, size - 1):
                keep &= ~is_space[inner : inner + count]
            hashes = (prefix[size : size + count] - prefix[:count]) * ppow[size - 1 : size - 1 + count]
            rows.append(np.compress(keep, pos_doc[:count]))
            cols.append(self._bucket(np.compress(keep, hashes), family))

        u_rows, u_cols, counts = _count(np.concatenate(rows), np.concatenate(cols), self.n_hashed, n)
        values = np.log1p(counts)
        unique_tokens = np.zeros(n, dtype=np.float64)
        if len(values):
            # entries are sorted by (row, family): each (row, family) segment is one run, normalised in one pass
            segment = u_rows * np.int32(self.n_families) + (u_cols >> np.int32(self.bits))
            change = np.empty(len(segment), dtype=bool)
            change[0] = True
            np.not_equal(segment[1:], segment[:-1], out=change[1:])
            seg_starts = np.flatnonzero(change)
            seg_ids = segment[seg_starts]
            seg_len = np.diff(seg_starts, append=len(segment))
            # summed in float64 in entry order (np.bincount), as the scorers already trained were
            norms = np.sqrt(np.bincount(segment, weights=values * values, minlength=n * self.n_families))
            values = values / (norms[segment] * np.sqrt(self.n_families))
            unigram = seg_ids % self.n_families == 0
            unique_tokens[seg_ids[unigram] // self.n_families] = seg_len[unigram]

        tokens = np.diff(np.searchsorted(tok_lo, bounds)).astype(np.float64)
        dense = _dense(raw, pos_doc, byte_lens, tokens, unique_tokens)
        return HashedFeatures(u_rows, u_cols, values.astype(np.float32), dense, n)


def _count(rows: np.ndarray, cols: np.ndarray, n_hashed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (row, column) entries, sorted, and how often each occurs."""
    if n * n_hashed < 2**32:  # 32-bit keys sort twice as fast
        keys = rows.view(np.uint32) * np.uint32(n_hashed)
        keys += cols.view(np.uint32)
    else:
        keys = rows.astype(np.uint64) * np.uint64(n_hashed) + cols.astype(np.uint64)
    keys.sort()
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(keys)).astype(np.float32)
    unique = keys[starts]
    u_rows = unique // keys.dtype.type(n_hashed)
    u_cols = unique - u_rows * keys.dtype.type(n_hashed)
    return u_rows.astype(np.int32, copy=False), u_cols.astype(np.int32, copy=False), counts


def _offsets(array: Any) -> np.ndarray:
    """Byte offsets of a pyarrow (large) string array's values, ``len(array) + 1`` of them."""
    wide = str(array.type) in ("large_string", "large_utf8", "large_binary")
    buffer = array.buffers()[1]
    dtype = np.int64 if wide else np.int32
    return np.frombuffer(buffer, dtype=dtype, count=len(array) + 1, offset=array.offset * np.dtype(dtype).itemsize)


def _join_arrow(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """(" " + doc + " " + doc ... + " " as bytes, byte length of each doc) of a pyarrow string array."""
    offsets = _offsets(array)
    data = array.buffers()[2]
    body = np.zeros(0, np.uint8)
    if data is not None and offsets[-1] > offsets[0]:
        body = np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1]))[int(offsets[0]) :]
    byte_lens = np.diff(offsets).astype(np.int64)
    n = len(byte_lens)
    raw = np.full(len(body) + n + 1, 32, dtype=np.uint8)
    # doc i's bytes move right by i + 1 separators
    shift = np.repeat(np.arange(1, n + 1, dtype=np.int64), byte_lens)
    raw[np.arange(len(body), dtype=np.int64) + shift] = body
    return raw, byte_lens


def _lower(raw: np.ndarray) -> np.ndarray:
    """ASCII lower case of UTF-8 bytes."""
    upper = (raw - np.uint8(65)) < np.uint8(26)
    lowered: np.ndarray = raw + (upper.view(np.uint8) << np.uint8(5))
    return lowered


def _dense(
    raw: np.ndarray, pos_doc: np.ndarray, byte_lens: np.ndarray, tokens: np.ndarray, unique_tokens: np.ndarray
) -> np.ndarray:
    """The length and shape statistics (``DENSE_NAMES``) of each document; each doc's counts include its separator."""
    n = len(byte_lens)
    classes = np.take(_CLASS, raw[: len(pos_doc)])  # one exclusive class a byte, counted per doc in one pass
    counts = np.bincount(pos_doc * np.int32(8) + classes, minlength=n * 8).reshape(n, 8).astype(np.float64)
    newlines = counts[:, _NEWLINE]
    spaces = counts[:, _BLANK] + newlines - 1.0  # the separator before each document
    punct, digits, upper = counts[:, _PUNCT_CLASS], counts[:, _DIGIT], counts[:, _UPPER]
    continuation = counts[:, _CONTINUATION]
    non_ascii = counts[:, _LEAD] + continuation
    chars = byte_lens - continuation  # characters: the bytes that start one
    blen = np.maximum(byte_lens.astype(np.float64), 1.0)
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
