"""Vectorised tokenising of VCF text: byte ranges into one buffer, split and typed with numpy.

A VCF body is millions of small values (48 samples x 5 FORMAT keys per line is already 240).
Parsing them one Python object at a time would run at a tenth of htslib's speed, so the parser
never makes per-value Python objects: a ``Spans`` is a set of ``[start, end)`` byte ranges
into the decompressed file, and splitting (on tab, ':', ',', ';', '/' or '|') and number
parsing are array operations over all values of a column at once. Strings are handed to Arrow
by gathering their bytes into one buffer, without a Python string per value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Buffer:
    """The decompressed text as bytes, with the positions of each separator found once."""

    data: np.ndarray  # uint8
    _positions: dict[bytes, np.ndarray] = field(default_factory=dict)

    def positions(self, chars: bytes) -> np.ndarray:
        """Sorted positions of any of ``chars`` (cached: one scan of the buffer per separator)."""
        cached = self._positions.get(chars)
        if cached is None:
            mask = self.data == chars[0]
            for c in chars[1:]:
                mask |= self.data == c
            cached = self._positions[chars] = np.flatnonzero(mask)
        return cached


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
        """The first byte of each value (0 for an empty one)."""
        data = self.buf.data
        safe = np.minimum(self.start, len(data) - 1)
        return np.where(self.length > 0, data[safe], 0)

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
        total = int(counts.sum())
        parent = np.repeat(np.arange(len(self)), counts)
        first = np.cumsum(counts) - counts
        k = np.arange(total) - first[parent]
        last = len(pos) - 1
        prev_sep = pos[np.clip(lo[parent] + k - 1, 0, max(last, 0))] if len(pos) else 0
        next_sep = pos[np.clip(lo[parent] + k, 0, max(last, 0))] if len(pos) else 0
        start = np.where(k == 0, self.start[parent], prev_sep + 1)
        end = np.where(k == counts[parent] - 1, self.end[parent], next_sep)
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

        Missing values are not ok; callers test ``missing()`` first.
        """
        data = self.buf.data
        first = self.first_byte()
        sign = (first == ord("-")) | (first == ord("+"))
        negative = first == ord("-")
        begin = self.start + sign
        width = self.end - begin
        ok = (width > 0) & (width <= 18)
        value = np.zeros(len(self), dtype=np.int64)
        top = len(data) - 1
        for j in range(int(width.max(initial=0)) if len(self) else 0):
            active = ok & (j < width)
            if not active.any():
                break
            digit = data[np.minimum(begin + j, top)].astype(np.int64) - 48
            good = (digit >= 0) & (digit <= 9)
            ok &= ~active | good
            value = np.where(active & good, value * 10 + digit, value)
        value = np.where(negative, -value, value)
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
    if values.dtype.kind in "iu":
        values = np.where(valid, values, 0)
    return pa.array(values, mask=~valid).cast(kind)
