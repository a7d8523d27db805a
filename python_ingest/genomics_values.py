"""Typed INFO and FORMAT values: VCF text to Glow's Arrow types, with per-value validation.

The rules, Glow's where Glow has one:

* ``.`` (or an empty value) is missing: null. In an array a missing element is a null element;
  an array whose every element is missing is null (Glow's fast reader makes ``.,.`` an empty
  array, its htsjdk reader null; null says "no value" without a special case).
* A value that is not of the header's Type (``DP=NA``, ``GQ=41.0`` for an Integer) breaks the
  record: the line is quarantined (Glow would log a warning and set null; htslib rejects it).
* A scalar (Number=1) given several comma-separated values of the right Type, as in Glow's
  ``misnumbered_info.vcf``, lands as null: Glow's choice, the value does not fit one cell.
* Integers are 32-bit; the VCF spec reserves the 8 lowest values, so they and anything beyond
  the int32 range break the record like any other value that is not an Integer.
* A field pinned to Glow's int type (``GQ``...) that a header declares Float is read as a
  Float and rounded: old GATK wrote GQ=15.04, and the spec's GQ is an integer phred score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from python_ingest.genomics_text import INT32_MAX, INT32_MIN, Spans, list_array, numpy_array


@dataclass
class Typed:
    """A typed column of ``len(spans)`` slots and the slots whose text broke the record."""

    array: pa.Array
    bad: np.ndarray  # bool per slot
    # For a list type, the bad element's text is needed for the message: slot -> text.
    bad_text: dict[int, str]


def _scalar(
    spans: Spans, present: np.ndarray, kind: pa.DataType, declared: str
) -> tuple[pa.Array, np.ndarray]:
    """(array, bad) for scalar slots; ``present`` is False where the key is absent."""
    n = len(spans)
    if pa.types.is_boolean(kind):
        return pa.array(present, pa.bool_()), np.zeros(n, dtype=bool)
    valid = present & ~spans.missing()
    if pa.types.is_string(kind):
        return spans.strings(valid), np.zeros(n, dtype=bool)
    rows = np.flatnonzero(valid)
    sub = spans.take(rows)
    if pa.types.is_integer(kind):
        values, ok = sub.parse_int()
        if declared == "Float" and not ok.all():
            floats, fok = sub.take(np.flatnonzero(~ok)).parse_float()
            rounded = np.rint(np.where(fok & np.isfinite(floats), floats, 0.0))
            usable = fok & (rounded >= INT32_MIN) & (rounded <= INT32_MAX)
            fixed = np.flatnonzero(~ok)[usable]
            values[fixed] = rounded[usable].astype(np.int64)
            ok[fixed] = True
    else:
        values, ok = sub.parse_float()
    bad = np.zeros(n, dtype=bool)
    if not ok.all():
        # Several values of the right Type in a Number=1 field: null, not an error (Glow).
        wrong = np.flatnonzero(~ok)
        parts, counts = sub.take(wrong).split(b",")
        part_ok = parts.parse_int()[1] if pa.types.is_integer(kind) else parts.parse_float()[1]
        part_ok |= parts.missing()
        owner = np.repeat(np.arange(len(wrong)), counts)
        all_ok = np.bincount(owner, weights=~part_ok, minlength=len(wrong)) == 0
        misnumbered = all_ok & (counts > 1)
        bad[rows[wrong[~misnumbered]]] = True
        ok[wrong[misnumbered]] = False
    full = np.zeros(n, dtype=values.dtype)
    full[rows] = values
    mask = np.zeros(n, dtype=bool)
    mask[rows] = ok
    return numpy_array(full, mask, kind), bad


def typed_values(spans: Spans, present: np.ndarray, kind: pa.DataType, declared: str) -> Typed:
    """Convert one value per slot (``present`` False: the key is absent there) to ``kind``."""
    n = len(spans)
    if not pa.types.is_list(kind):
        array, bad = _scalar(spans, present, kind, declared)
        text = {int(i): spans.text(int(i)) for i in np.flatnonzero(bad)[:1000]}
        return Typed(array, bad, text)
    item = kind.value_type
    slots = np.flatnonzero(present & ~spans.missing())
    parts, counts = spans.take(slots).split(b",")
    owner = np.repeat(slots, counts)
    if pa.types.is_string(item):
        part_missing = parts.missing()
        values, part_bad = parts.strings(~part_missing), np.zeros(len(parts), dtype=bool)
    else:
        values, part_bad = _scalar(parts, np.ones(len(parts), dtype=bool), item, declared)
        part_missing = ~np.asarray(values.is_valid()) & ~part_bad
    bad = np.zeros(n, dtype=bool)
    bad[owner[part_bad]] = True
    text = {}
    for i in np.flatnonzero(part_bad)[:1000]:
        text.setdefault(int(owner[i]), parts.text(int(i)))
    # Null list where the key is absent, missing, or every element is missing.
    all_counts = np.zeros(n, dtype=np.int64)
    all_counts[slots] = counts
    missing_per_slot = np.bincount(owner, weights=part_missing, minlength=n)
    valid = (all_counts > 0) & (missing_per_slot < all_counts)
    keep = valid[owner] if len(owner) else np.zeros(0, dtype=bool)
    values = values.filter(pa.array(keep)) if len(values) else values
    return Typed(list_array(np.where(valid, all_counts, 0), values, valid, kind), bad, text)
