"""Vectorised tokenising of VCF text: byte ranges into one buffer, split and typed with numpy.

A VCF body is millions of small values (48 samples x 5 FORMAT keys per line is already 240).
Parsing them one Python object at a time would run at a tenth of htslib's speed, so the parser
never makes per-value Python objects: a ``Spans`` is a set of ``[start, end)`` byte ranges
into the decompressed file, and splitting (on tab, ':', ',', ';', '/' or '|') and number
parsing are array operations over all values of a column at once. Strings are handed to Arrow
by gathering their bytes into one buffer, without a Python string per value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DOT = ord(".")
INT32_MIN = -(2**31) + 8  # the VCF spec reserves the 8 lowest values (missing, vector end...)
INT32_MAX = 2**31 - 1
# VCF Float: C-style decimal or exponent forms, and NaN / Inf / Infinity in any case and sign.
FLOAT_PATTERN = (
    r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])$"
)


PAD = 32  # zero bytes around the text: fixed-width reads never leave the buffer


class Buffer:
    """The decompressed text as bytes, with the positions of each separator found once."""

    def __init__(self, text: bytes) -> None:
        self.padded = np.zeros(len(text) + 2 * PAD, dtype=np.uint8)
        self.padded[PAD : PAD + len(text)] = np.frombuffer(text, dtype=np.uint8)
        self.data = self.padded[PAD : PAD + len(text)]
        self._positions: dict[bytes, np.ndarray] = {}

    def positions(self, chars: bytes) -> np.ndarray:
        """Sorted positions of any of ``chars`` (cached: one scan of the buffer per separator)."""
        cached = self._positions.get(chars)
        if cached is None:
            mask = self.data == chars[0]
            for c in chars[1:]:
                mask |= self.data == c
            found = np.flatnonzero(mask).astype(np.int32)
            # One past the end closes the last part of a split; never a real separator.
            cached = self._positions[chars] = np.append(found, np.int32(len(self.data)))
        return cached[:-1]

    def bounds(self, chars: bytes) -> np.ndarray:
        """``positions(chars)`` followed by the text length."""
        self.positions(chars)
        return self._positions[chars]

    def column(self, end: np.ndarray, offset: int) -> np.ndarray:
        """The byte at ``end - offset`` for each position (0 outside the text)."""
        return self.padded[end + (PAD - offset)]


@dataclass
class Spans:
    """Byte ranges ``[start, end)`` into ``buf``: one per value."""

    buf: Buffer
    start: np.ndarray  # int64
    end: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.start)

    @property
    def length(self) -> np.ndarray:
        return self.end - self.start

    def take(self, index: np.ndarray) -> Spans:
        return Spans(self.buf, self.start[index], self.end[index])

    def first_byte(self) -> np.ndarray:
        """The first byte of each value (0 for an empty one at the end of the text)."""
        return self.buf.padded[self.start + PAD]

    def missing(self) -> np.ndarray:
        """``.`` (the VCF missing value) or empty."""
        length = self.length
        return (length == 0) | ((length == 1) & (self.first_byte() == DOT))

    def split(self, chars: bytes) -> tuple[Spans, np.ndarray]:
        """Split every value on any of ``chars``: (parts, number of parts per value).

        Parts are in value order; an empty value is one empty part, as ``str.split`` gives.
        """
        pos = self.buf.positions(chars)
        lo = np.searchsorted(pos, self.start, "left")
        hi = np.searchsorted(pos, self.end, "left")
        counts = hi - lo + 1
        if len(pos) == 0 or not (hi > lo).any():
            return Spans(self.buf, self.start.copy(), self.end.copy()), counts
        bounds = self.buf.bounds(chars)
        first = np.cumsum(counts) - counts  # index of each value's first part
        j = np.repeat(lo - first, counts)
        j += np.arange(len(j), dtype=j.dtype)  # the separator after each part
        start = bounds[j - 1] + 1
        start[first] = self.start
        end = bounds[j]
        end[first + counts - 1] = self.end
        return Spans(self.buf, start, end), counts

    def strings(self, valid: np.ndarray | None = None) -> pa.Array:
        """The values as an Arrow string array (null where ``valid`` is False)."""
        length = self.length if valid is None else np.where(valid, self.length, 0)
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        total = int(offsets[-1])
        if total:
            index = np.repeat(self.start - offsets[:-1], length) + np.arange(total)
            data = self.buf.data[index]
        else:
            data = np.zeros(0, dtype=np.uint8)
        bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
        array = pa.Array.from_buffers(
            pa.large_string(), len(self), [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        return array.cast(pa.string())

    def text(self, i: int) -> str:
        """One value as a Python string (for messages)."""
        raw = self.buf.data[self.start[i] : self.end[i]].tobytes()
        return raw.decode("utf-8", errors="replace")

    def parse_int(self, lo: int = INT32_MIN, hi: int = INT32_MAX) -> tuple[np.ndarray, np.ndarray]:
        """(value, ok) for every value: a signed decimal integer within ``[lo, hi]``.

        Digits are read right-aligned, one byte column of all values at a time: a byte before a
        value's first digit counts as a leading zero, so there is no per-value loop.
        Missing values are not ok; callers test ``missing()`` first.
        """
        n = len(self)
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        first = self.first_byte()
        sign = (first == ord("-")) | (first == ord("+"))
        width = self.length - sign
        ok = (width > 0) & (width <= 18)
        top = int(width.max(initial=0)) if ok.all() else int(np.where(ok, width, 0).max())
        value = np.zeros(n, dtype=np.int64 if top > 9 else np.int32)
        skip = top - width
        for j in range(top):
            digit = self.buf.column(self.end, top - j) - np.uint8(48)  # a non-digit wraps > 9
            inside = skip <= j
            ok &= (digit <= 9) | ~inside
            value *= 10
            value += digit * inside
        if sign.any():
            value = np.where(first == ord("-"), -value.astype(np.int64), value)
        ok &= (value >= lo) & (value <= hi)
        return value, ok

    def parse_float(self) -> tuple[np.ndarray, np.ndarray]:
        """(value, ok) for every value: a VCF Float (decimal, exponent, NaN, Inf)."""
        strings = self.strings()
        try:  # the common case: every value is a number the cast understands
            values = pc.cast(strings, pa.float64())
            ok = np.ones(len(self), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ok = pc.match_substring_regex(strings, FLOAT_PATTERN).to_numpy(zero_copy_only=False)
            values = pc.cast(pc.if_else(pa.array(ok), strings, "0"), pa.float64())
        return values.to_numpy(zero_copy_only=False), ok


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def list_array(
    counts: np.ndarray, values: pa.Array, valid: np.ndarray, kind: pa.DataType
) -> pa.Array:
    """A list array of ``len(counts)`` rows: row i holds the next ``counts[i]`` values."""
    offsets = pa.array(offsets_from_counts(counts).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, values, type=kind, mask=pa.array(~valid))


def numpy_array(values: np.ndarray, valid: np.ndarray, kind: pa.DataType) -> pa.Array:
    """An Arrow array from numpy values, null where ``valid`` is False."""
    if pa.types.is_integer(kind):
        values = np.where(valid, values, 0).astype(kind.to_pandas_dtype())
    return pa.array(values, type=kind, mask=~valid)


@dataclass
class SampleTokens:
    """Every ':'-separated value of every sample column of a block of lines, in file order.

    Cells (one sample column of one line) are consecutive, so the values of cell ``c`` are
    ``spans[first[c] : first[c] + counts[c]]``: the value of FORMAT position ``p`` is at
    ``first[c] + p`` when ``p < counts[c]`` (trailing values may be dropped).
    """

    spans: Spans
    first: np.ndarray  # index of each cell's first value
    counts: np.ndarray  # number of values per cell

    def slot(self, position: np.ndarray) -> tuple[Spans, np.ndarray]:
        """The value at FORMAT ``position`` (per cell; -1 if absent) and where it is present."""
        present = (position >= 0) & (position < self.counts)
        index = np.where(present, self.first + position, 0)
        return self.spans.take(index), present


def sample_tokens(buf: Buffer, tab: np.ndarray, end: np.ndarray) -> SampleTokens:
    """Tokenise the sample columns of each line: ``tab`` is the tab before the first sample.

    One sorted array of the ':' / tab / newline positions serves every line: the tokens of a
    line are the delimiters from its ``tab`` up to its end, and a tab starts the next cell. No
    per-cell search and no per-cell Python.
    """
    delims = buf.positions(b":\t\n")
    bounds = buf.bounds(b":\t\n")
    lo = np.searchsorted(delims, tab)
    hi = np.searchsorted(delims, end)
    counts = hi - lo
    total = int(counts.sum())
    offsets = np.cumsum(counts) - counts
    index = np.repeat(lo - offsets, counts)
    index += np.arange(total)
    start = bounds[index] + 1
    stop = bounds[index + 1]
    last = offsets + counts - 1
    stop[last] = np.minimum(stop[last], end)  # a '\r' before the newline is no value
    first = np.flatnonzero(buf.data[bounds[index]] == 9)
    per_cell = np.diff(np.append(first, total))
    return SampleTokens(Spans(buf, start, stop), first, per_cell)
