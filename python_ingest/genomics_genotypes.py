"""FORMAT and sample columns: Glow's ``genotypes`` array, one struct per sample column.

``GT`` becomes ``phased`` (the first allele separator is '|') and ``calls`` (allele indices, a
missing allele is -1: ``./.`` is ``[-1, -1]``, haploid ``1`` is ``[1]``). Trailing FORMAT
fields a sample drops are null (the spec allows dropping them). A record breaks, and is
quarantined whole, when a sample column holds more values than FORMAT has keys, a GT that is
not a genotype (``het``, ``0/A``, ``0/``), a GT allele beyond the record's ALT alleles (htslib
reads ``0/2`` on one ALT silently: a validating reader must check), or a value not of its
header Type. FORMAT keys without a header line are dropped as Glow does, except GT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.genomics_schema import Header, genotype_fields
from python_ingest.genomics_text import Spans, list_array, numpy_array
from python_ingest.genomics_values import typed_values


@dataclass
class GenotypeResult:
    array: pa.Array  # list<struct> per row
    errors: dict[int, str] = field(default_factory=dict)  # row -> reason


def _article(kind: str) -> str:
    return "an" if kind[0] in "AEIOU" else "a"


def format_keys(formats: Spans) -> tuple[list[list[str]], np.ndarray]:
    """(keys of each distinct FORMAT string, index of each row's FORMAT among them)."""
    encoded = pc.dictionary_encode(formats.strings())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    keys = [[] if f in (".", "") else f.split(":") for f in encoded.dictionary.to_pylist()]
    return keys, codes


def parse_genotypes(
    formats: Spans, cells: Spans, header: Header, n_alt: np.ndarray
) -> GenotypeResult:
    """``cells`` holds ``len(formats) * n_samples`` sample values, row by row."""
    n, n_samples = len(formats), len(header.samples)
    keys, codes = format_keys(formats) if n else ([], np.zeros(0, dtype=np.int64))
    uses_gt = any("GT" in k for k in keys)
    spec = genotype_fields(header, uses_gt)
    struct_fields = [pa.field("sampleId", pa.string())] + [f for _, f, _ in spec]
    struct_type = pa.struct(struct_fields)
    result = GenotypeResult(pa.array([], pa.list_(struct_type)))
    if n_samples == 0:
        empty = pa.StructArray.from_arrays(
            [pa.array([], f.type) for f in struct_fields], fields=struct_fields
        )
        result.array = list_array(
            np.zeros(n, np.int64), empty, np.ones(n, bool), pa.list_(struct_type)
        )
        return result
    cell_row = np.repeat(np.arange(n), n_samples)
    cell_col = np.tile(np.arange(n_samples), n)
    parts, counts = cells.split(b":")
    first = np.cumsum(counts) - counts
    n_keys = np.array([len(k) for k in keys], dtype=np.int64)[codes][cell_row]

    def fail(cell_mask: np.ndarray, reason) -> None:
        for cell in np.flatnonzero(cell_mask):
            row = int(cell_row[cell])
            if row not in result.errors:
                result.errors[row] = reason(int(cell), int(cell_col[cell]) + 1)

    too_many = (counts > n_keys) & (n_keys > 0)
    fail(
        too_many,
        lambda c, j: f"sample column {j} has {counts[c]} values for {n_keys[c]} FORMAT keys",
    )

    children: list[pa.Array] = [pa.array(header.samples, pa.string()).take(cell_col)]
    for key, glow_field, definition in spec:
        pos_by_format = np.array([k.index(key) if key in k else -1 for k in keys], dtype=np.int64)
        pos = pos_by_format[codes][cell_row] if len(keys) else np.full(len(cells), -1)
        present = (pos >= 0) & (pos < counts)
        where = np.where(present, first + pos, 0)
        slot = parts.take(where) if len(parts) else cells
        if key == "GT":
            if glow_field.name == "phased":
                calls, phased = _calls(slot, present, n_alt[cell_row], fail)
                children += [phased, calls]
            continue
        typed = typed_values(slot, present, glow_field.type, definition.type)
        children.append(typed.array)
        article = _article(definition.type)
        fail(
            typed.bad,
            lambda c, j, key=key, t=typed, d=definition, a=article: (
                f"FORMAT/{key} '{t.bad_text.get(c, '')}' of sample column {j} is not {a} {d.type}"
            ),
        )
    struct = pa.StructArray.from_arrays(children, fields=struct_fields)
    offsets = np.arange(0, n * n_samples + 1, n_samples, dtype=np.int64)
    result.array = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), struct)
    return result


def _calls(slot: Spans, present: np.ndarray, n_alt: np.ndarray, fail) -> tuple[pa.Array, pa.Array]:
    """(calls, phased) per cell from the GT values; broken genotypes are reported to ``fail``."""
    cells = np.flatnonzero(present)
    gt = slot.take(cells)
    alleles, counts = gt.split(b"/|")
    owner = np.repeat(np.arange(len(cells)), counts)
    missing = alleles.missing() & (alleles.length == 1)
    values, ok = alleles.parse_int(lo=0)
    ok |= missing
    values = np.where(missing, -1, values)
    bad_cell = np.zeros(len(slot), dtype=bool)
    bad_cell[cells[owner[~ok]]] = True
    fail(bad_cell, lambda c, j: f"GT '{slot.text(c)}' of sample column {j} is not a genotype")
    beyond = ok & (values > n_alt[cells][owner])
    over = np.zeros(len(slot), dtype=bool)
    over[cells[owner[beyond]]] = True
    fail(
        over & ~bad_cell,
        lambda c, j: (
            f"GT '{slot.text(c)}' of sample column {j} exceeds the {n_alt[c]} ALT allele(s)"
        ),
    )
    seps = slot.buf.positions(b"/|")
    lo = np.searchsorted(seps, gt.start)
    first_sep = slot.buf.data[seps[np.minimum(lo, len(seps) - 1)]] if len(seps) else 0
    phased_cell = (counts > 1) & (first_sep == ord("|"))
    phased = np.zeros(len(slot), dtype=bool)
    phased[cells] = phased_cell
    all_counts = np.zeros(len(slot), dtype=np.int64)
    all_counts[cells] = counts
    calls = list_array(
        all_counts,
        numpy_array(np.where(ok, values, -1), np.ones(len(values), bool), pa.int32()),
        present,
        pa.list_(pa.int32()),
    )
    return calls, pa.array(phased, pa.bool_())
