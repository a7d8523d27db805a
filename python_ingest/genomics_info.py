"""The INFO column: one ``INFO_<key>`` column per header INFO line, as Glow flattens them.

A key the header declares but a record lacks is null, except a Flag, which is false (Glow).
A key a record uses without a header line is dropped, as in Glow (its schema comes from the
header only); the raw line stays reachable through ``_source_locator``. ``END`` sets the
record's ``end`` whether or not the header declares it; declared, it also fills ``INFO_END``.
VEP ``CSQ`` and SnpEff ``ANN`` are split into Glow's annotation structs; a sub-field that is not
of its Glow type (a VEP ``cDNA_position`` range ``1341-1342``) is null rather than breaking the
record, since annotation sub-fields are a convention, not a VCF type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.genomics_schema import ANNOTATION_KEYS, INFO_PREFIX, Header
from python_ingest.genomics_text import Spans
from python_ingest.genomics_values import not_typed, typed_values


@dataclass
class InfoResult:
    columns: dict[str, pa.Array]
    end: np.ndarray  # INFO/END per row (valid where has_end)
    has_end: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)  # row -> reason


def parse_info(info: Spans, header: Header) -> InfoResult:
    """Parse the INFO column of ``len(info)`` rows."""
    n = len(info)
    buf = info.buf
    rows = np.flatnonzero(~info.missing())
    items, counts = info.take(rows).split(b";")
    owner = np.repeat(rows, counts)
    keep = items.length > 0  # "DP=3;;AF=.1" or a trailing ';': nothing there
    items, owner = items.take(np.flatnonzero(keep)), owner[keep]
    eq = buf.positions(b"=")
    lo = np.searchsorted(eq, items.start)
    at = eq[np.minimum(lo, len(eq) - 1)] if len(eq) else np.zeros(len(items), dtype=np.int64)
    has_eq = (lo < len(eq)) & (at < items.end)
    key_end = np.where(has_eq, at, items.end)
    value = Spans(buf, np.where(has_eq, key_end + 1, items.end), items.end)
    encoded = pc.dictionary_encode(Spans(buf, items.start, key_end).strings())
    codes = encoded.indices.to_numpy(zero_copy_only=False) if len(items) else np.zeros(0, int)
    code_of = {k: i for i, k in enumerate(encoded.dictionary.to_pylist())} if len(items) else {}

    def slot_spans(key: str) -> tuple[Spans, np.ndarray]:
        start = np.zeros(n, dtype=np.int64)
        end = np.zeros(n, dtype=np.int64)
        present = np.zeros(n, dtype=bool)
        code = code_of.get(key)
        if code is not None:
            sel = np.flatnonzero(codes == code)
            where = owner[sel]
            start[where], end[where], present[where] = value.start[sel], value.end[sel], True
        return Spans(buf, start, end), present

    result = InfoResult({}, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))
    end_spans, has_end = slot_spans("END")
    has_end &= ~end_spans.missing()
    end_ok = np.zeros(n, dtype=bool)  # an END that ``end`` holds, whatever INFO_END can
    if has_end.any():
        end_rows = np.flatnonzero(has_end)
        values, ok = end_spans.take(end_rows).parse_int(lo=0, hi=2**62)
        result.end[end_rows[ok]] = values[ok]
        end_ok[end_rows[ok]] = True
        for i in np.flatnonzero(~ok):
            row = int(end_rows[i])
            result.errors.setdefault(row, f"INFO/END '{end_spans.text(row)}' is not an Integer")
        result.has_end = has_end
    for key, definition in header.info.items():
        spans, present = slot_spans(key)
        kind = definition.glow_type()
        if key in ANNOTATION_KEYS:
            result.columns[INFO_PREFIX + key] = _annotations(spans, present, kind)
            continue
        typed = typed_values(spans, present, kind, definition.type)
        result.columns[INFO_PREFIX + key] = typed.array
        # A position past 2^31 (a long plant or assembly contig) does not fit Glow's int
        # INFO_END: that cell is null and ``end`` holds the position, as htslib keeps the record.
        bad = typed.bad & ~end_ok if key == "END" else typed.bad
        for row in np.flatnonzero(bad):
            text = typed.bad_text.get(int(row), "")
            reason = f"INFO/{key} '{text}' " + not_typed(text, definition.type, kind)
            result.errors.setdefault(int(row), reason)
    return result


def _subfield(text: str, kind: pa.DataType) -> object:
    """One annotation sub-field by Glow's type ('' is null)."""
    if text == "":
        return None
    if pa.types.is_list(kind):
        return text.split("&")
    if pa.types.is_struct(kind):
        parts = [*text.split("/", 1), None]
        names = [f.name for f in kind]
        if pa.types.is_integer(kind.field(0).type):
            parts = [_int(p) for p in parts]
        return dict(zip(names, parts[:2], strict=True))
    if pa.types.is_integer(kind):
        return _int(text)
    return text


def _int(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is None or -(2**31) <= value < 2**31 else None


def _annotations(spans: Spans, present: np.ndarray, kind: pa.DataType) -> pa.Array:
    """VEP/SnpEff annotations: comma-separated entries of '|'-separated sub-fields."""
    struct = kind.value_type
    fields = list(struct)
    out: list[list[dict[str, object]] | None] = [None] * len(spans)
    valid = present & ~spans.missing()
    rows = np.flatnonzero(valid)
    for row, text in zip(rows, spans.take(rows).strings().to_pylist(), strict=True):
        entries = []
        for entry in text.split(","):
            parts = entry.split("|", len(fields) - 1)
            parts += [""] * (len(fields) - len(parts))
            entries.append(
                {f.name: _subfield(p, f.type) for f, p in zip(fields, parts, strict=True)}
            )
        out[int(row)] = entries
    return pa.array(out, kind)
