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
        """The columns (uint32) of ``hashes`` in ``family``'s block of ``2**bits`` buckets."""
        mixed: np.ndarray = np.bitwise_xor(hashes, _SALTS[family])  # the one new array: the rest is in place
        mixed *= _MIX
        mixed ^= mixed >> np.uint32(15)
        mixed *= _MIX
        mixed >>= np.uint32(32 - self.bits)
        mixed += np.uint32(family << self.bits)
        return mixed

    def _transform_chunk(self, texts: Sequence[str]) -> HashedFeatures:
        # Each document is " " + text; the final " " closes the last one. One encode for the chunk; a text's
        # byte length is its length when it is ASCII (str.isascii is a flag check), else that of its encoding.
        raw = np.frombuffer((" " + " ".join(texts) + " ").encode("utf-8", "replace"), dtype=np.uint8)
        lengths = (len(t) if t.isascii() else len(t.encode("utf-8", "replace")) for t in texts)
        return self._featurize(raw, np.fromiter(lengths, dtype=np.int64, count=len(texts)))

    def _featurize(self, raw: np.ndarray, byte_lens: np.ndarray) -> HashedFeatures:
        """Features of the documents laid out in ``raw`` as " " + doc + " " + doc ... + " " (UTF-8 bytes)."""
        n = len(byte_lens)
        upper = (raw - np.uint8(65)) < np.uint8(26)
        text = raw + (upper.view(np.uint8) << np.uint8(5)) if self.lowercase else raw  # ASCII lower case
        length = len(text)
        ppow, qpow = self._powers(length + 1)
        prefix = np.zeros(length + 1, dtype=np.uint32)
        np.cumsum(np.multiply(text, qpow[:length], dtype=np.uint32), dtype=np.uint32, out=prefix[1:])

        is_space = (raw == 32) | ((raw - np.uint8(9)) < np.uint8(5))  # comparisons: faster than a table lookup
        is_digit = (raw - np.uint8(48)) < np.uint8(10)
        non_ascii = raw >= 128  # UTF-8 lead and continuation bytes belong to words
        is_word = non_ascii | is_digit | (((raw | np.uint8(32)) - np.uint8(97)) < np.uint8(26)) | (raw == 95)
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
        wide = n * self.n_hashed >= 2**32  # a key (document, column) fits in 32 bits unless the chunk is huge
        key_type = np.uint64 if wide else np.uint32
        doc_base = np.arange(n, dtype=key_type) * key_type(self.n_hashed)  # the key of each document's column 0
        doc_key = np.repeat(doc_base, byte_lens + 1)  # ... of each byte's document
        tok_key = doc_key[tok_lo]
        tok_hash = (prefix[tok_hi] - prefix[tok_lo]) * ppow[tok_hi - 1]

        keys = [tok_key + self._bucket(tok_hash, 0)]
        same_doc = tok_key[1:] == tok_key[:-1]  # bigrams of every two neighbours, then those within a document
        bigram = tok_hash[:-1] * _P + (tok_hash[1:] ^ _SALTS[-1])
        keys.append(np.compress(same_doc, tok_key[1:] + self._bucket(bigram, 1)))

        for family, size in enumerate(self.char_ngrams, start=2):
            count = length - size + 1  # n-grams starting at 0 .. length - size: slices, no index arrays
            if count <= 0:
                continue
            # keep n-grams with no whitespace inside (ends may be spaces: word boundaries); the keys of every
            # n-gram are made, then those kept: one compress, not one per array
            drop = is_space[:count] & is_space[size - 1 : size - 1 + count]
            for inner in range(1, size - 1):
                drop |= is_space[inner : inner + count]
            hashes = (prefix[size : size + count] - prefix[:count]) * ppow[size - 1 : size - 1 + count]
            family_keys = self._bucket(hashes, family).astype(key_type, copy=False)  # a new array: added to in place
            family_keys += doc_key[:count]
            keys.append(np.compress(~drop, family_keys))

        unique, counts = _count(np.concatenate(keys))
        values = np.log1p(counts)
        # a key is (document · families + family) · 2**bits + bucket: the sorted keys run in (document, family)
        # segments, found by binary search for each segment's first key
        segment_keys = np.arange(n * self.n_families + 1, dtype=key_type) << key_type(self.bits)
        seg_bounds = np.searchsorted(unique, segment_keys)
        seg_len = np.diff(seg_bounds)
        per_doc = seg_len.reshape(n, self.n_families).sum(axis=1)
        u_rows = np.repeat(np.arange(n, dtype=np.int32), per_doc)
        u_cols = (unique - np.repeat(doc_base, per_doc)).astype(np.int32)
        unique_tokens = seg_len[:: self.n_families].astype(np.float64)  # distinct word tokens of each document
        filled = seg_len > 0
        if filled.any():
            # Σ log1p(count)² per segment in float64, exact in any order (so as np.bincount summed it for the scorers
            # already trained): each term is a float32 ≥ 2**-2, a multiple of 2**-25, and a sum below 2**28 is exact
            norms = np.sqrt(np.add.reduceat(values * values, seg_bounds[:-1][filled], dtype=np.float64))
            scale = norms * np.sqrt(self.n_families)
            np.divide(values, np.repeat(scale, seg_len[filled]), out=values)

        tokens = np.diff(np.searchsorted(tok_lo, bounds)).astype(np.float64)
        classes = {"space": is_space, "punct": is_punct, "digit": is_digit, "upper": upper, "non_ascii": non_ascii}
        dense = _dense(raw, bounds, byte_lens, tokens, unique_tokens, classes)
        return HashedFeatures(u_rows, u_cols, values, dense, n)


def _count(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, sorted, and how often each occurs (float32)."""
    keys.sort()
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.empty(len(starts), dtype=np.float32)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1], casting="unsafe")
    counts[-1:] = len(keys) - starts[-1:]
    return keys[starts], counts


def _offsets(array: Any) -> np.ndarray:
    """Byte offsets of a pyarrow (large) string array's values, ``len(array) + 1`` of them."""
    wide = str(array.type) in ("large_string", "large_utf8", "large_binary")
    buffer = array.buffers()[1]
    dtype = np.int64 if wide else np.int32
    return np.frombuffer(buffer, dtype=dtype, count=len(array) + 1, offset=array.offset * np.dtype(dtype).itemsize)


def _join_arrow(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """(" " + doc + " " + doc ... + " " as bytes, byte length of each doc) of a pyarrow string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    byte_lens = np.diff(_offsets(array)).astype(np.int64)
    n = len(byte_lens)
    raw = np.empty(int(byte_lens.sum()) + n + 1, dtype=np.uint8)
    raw[0] = raw[-1] = 32
    if len(raw) > 2:  # Arrow joins the documents with the separator in one C++ pass
        lists = pa.LargeListArray.from_arrays(pa.array([0, n], pa.int64()), array)
        joined = pc.binary_join(lists, pa.scalar(" ", type=array.type))
        offset = _offsets(joined)[0]
        raw[1:-1] = np.frombuffer(joined.buffers()[2], dtype=np.uint8, count=len(raw) - 2, offset=int(offset))
    return raw, byte_lens


def _dense(
    raw: np.ndarray,
    bounds: np.ndarray,
    byte_lens: np.ndarray,
    tokens: np.ndarray,
    unique_tokens: np.ndarray,
    classes: dict[str, np.ndarray],
) -> np.ndarray:
    """The length and shape statistics (``DENSE_NAMES``) of each document; each doc's counts include its separator.

    ``classes`` holds the byte masks already made (space, punct, digit, upper, non_ascii); each is counted per
    document by one ``np.add.reduceat`` over the documents' byte ranges (none is empty: each has its separator)."""
    body = len(raw) - 1  # the closing separator belongs to no document
    starts = bounds[:-1]
    count_type = np.int32 if body < 2**31 else np.int64  # int32 sums: twice as fast

    def per_doc(mask: np.ndarray) -> np.ndarray:
        counted: np.ndarray = np.add.reduceat(mask[:body], starts, dtype=count_type).astype(np.float64)
        return counted

    newlines = per_doc(raw == 10)
    spaces = per_doc(classes["space"]) - 1.0  # the separator before each document
    punct, digits, upper = per_doc(classes["punct"]), per_doc(classes["digit"]), per_doc(classes["upper"])
    continuation = per_doc((raw - np.uint8(0x80)) < np.uint8(0x40))
    non_ascii = per_doc(classes["non_ascii"])
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
