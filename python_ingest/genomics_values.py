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
  the int32 range break the record like any other value that is not an Integer (the reason says
  which). INFO/END is the exception: a position past 2^31 on a long contig leaves ``INFO_END``
  null and lands whole in the 64-bit ``end``, as htslib keeps such a record.
* A field pinned to Glow's int type (``GQ``...) that a header declares Float is read as a
  Float and rounded: old GATK wrote GQ=15.04, and the spec's GQ is an integer phred score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from python_ingest.genomics_text import INT32_MAX, INT32_MIN, Spans, list_array, numpy_array

_INTEGER_TEXT = re.compile(r"[+-]?\d+")


def article(kind: str) -> str:
    return "an" if kind[0] in "AEIOU" else "a"


def not_typed(text: str, declared: str, kind: pa.DataType) -> str:
    """Why a value broke its record, for a reason: the words that follow the value.

    The type a value must have is Glow's column type, which for the keys Glow pins (``AD``,
    ``DP``, ``GQ``...) can differ from the header's Type; the reason then says both.
    """
    item = kind.value_type if pa.types.is_list(kind) else kind
    wanted = (
        "Integer"
        if pa.types.is_integer(item)
        else "Float"
        if pa.types.is_floating(item)
        else declared
    )
    if wanted == "Integer" and _INTEGER_TEXT.fullmatch(text) and -(2**31) <= int(text) < INT32_MIN:
        why = "is one of the 8 lowest 32-bit integers, which VCF reserves (BCF's missing markers)"
    elif wanted == "Integer" and _INTEGER_TEXT.fullmatch(text):
        why = "is outside the 32-bit range of a VCF Integer"
    else:
        why = f"is not {article(wanted)} {wanted}"
    if wanted != declared:
        why += f" (the header declares Type={declared}; Glow's column for this key is {wanted})"
    return why


@dataclass
class Typed:
    """A typed column of ``len(spans)`` slots and the slots whose text broke the record."""

    array: pa.Array
    bad: np.ndarray  # bool per slot
    # For a list type, the bad element's text is needed for the message: slot -> text.
    bad_text: dict[int, str]


def _scalar(
    spans: Spans, present: np.ndarray, kind: pa.DataType, declared: str
) -> tuple[np.ndarray | pa.Array, np.ndarray, np.ndarray]:
    """(values, valid, bad) for scalar slots; ``present`` is False where the key is absent.

    Values are numpy for numbers and booleans (null where not ``valid``), Arrow for strings.
    """
    n = len(spans)
    if pa.types.is_boolean(kind):
        return present.copy(), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    valid = present & ~spans.missing()
    if pa.types.is_string(kind):
        return spans.strings(valid), valid, np.zeros(n, dtype=bool)
    if pa.types.is_integer(kind):
        if 2 * np.count_nonzero(valid) > n:  # every slot at once: an absent one is simply not ok
            values, ok = spans.parse_int()
        else:  # a sparse key (PS on a few phased calls): only where it is
            rows = np.flatnonzero(valid)
            values, ok = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
            values[rows], ok[rows] = spans.take(rows).parse_int()
        if declared == "Float" and (valid & ~ok).any():
            redo = np.flatnonzero(valid & ~ok)
            floats, fok = spans.take(redo).parse_float()
            rounded = np.rint(np.where(fok & np.isfinite(floats), floats, 0.0))
            usable = fok & (rounded >= INT32_MIN) & (rounded <= INT32_MAX)
            values = values.astype(np.int64)
            values[redo[usable]] = rounded[usable].astype(np.int64)
            ok[redo[usable]] = True
    else:  # floats go through Arrow's parser: only the values that are there
        rows = np.flatnonzero(valid)
        sub_values, sub_ok = spans.take(rows).parse_float()
        values, ok = np.zeros(n), np.zeros(n, dtype=bool)
        values[rows], ok[rows] = sub_values, sub_ok
    bad = valid & ~ok
    if bad.any():
        # Several values of the right Type in a Number=1 field: null, not an error (Glow).
        wrong = np.flatnonzero(bad)
        parts, counts = spans.take(wrong).split(b",")
        part_ok = parts.parse_int()[1] if pa.types.is_integer(kind) else parts.parse_float()[1]
        part_ok |= parts.missing()
        owner = np.repeat(np.arange(len(wrong)), counts)
        all_ok = np.bincount(owner[~part_ok], minlength=len(wrong)) == 0
        bad[wrong[all_ok & (counts > 1)]] = False
    return values, valid & ok, bad


def _arrow(values: np.ndarray | pa.Array, valid: np.ndarray, kind: pa.DataType) -> pa.Array:
    return values if isinstance(values, pa.Array) else numpy_array(values, valid, kind)


def typed_values(
    spans: Spans, present: np.ndarray, kind: pa.DataType, declared: str, sep: bytes = b","
) -> Typed:
    """Convert one value per slot (``present`` False: the key is absent there) to ``kind``.

    Array elements are split on ``sep``: ',' for VCF arrays, ';' for FORMAT/FT filter codes.
    """
    n = len(spans)
    if not pa.types.is_list(kind):
        values, valid, bad = _scalar(spans, present, kind, declared)
        text = {int(i): spans.text(int(i)) for i in np.flatnonzero(bad)[:1000]}
        return Typed(_arrow(values, valid, kind), bad, text)
    item = kind.value_type
    slots = np.flatnonzero(present & ~spans.missing())
    parts, counts = spans.take(slots).split(sep)
    owner = np.repeat(slots, counts)
    values, part_valid, part_bad = _scalar(parts, np.ones(len(parts), dtype=bool), item, declared)
    bad = np.zeros(n, dtype=bool)
    bad[owner[part_bad]] = True
    text = {}
    for i in np.flatnonzero(part_bad)[:1000]:
        text.setdefault(int(owner[i]), parts.text(int(i)))
    # Null list where the key is absent, missing, or every element is missing.
    all_counts = np.zeros(n, dtype=np.int64)
    all_counts[slots] = counts
    missing_per_slot = np.bincount(owner[~part_valid], minlength=n)
    valid = (all_counts > 0) & (missing_per_slot < all_counts)
    if not valid[slots].all():  # drop the elements of the lists that became null
        keep = valid[owner]
        values = values.filter(pa.array(keep)) if isinstance(values, pa.Array) else values[keep]
        part_valid = part_valid[keep]
    array = _arrow(values, part_valid, item)
    return Typed(list_array(np.where(valid, all_counts, 0), array, valid, kind), bad, text)
