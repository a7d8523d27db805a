"""FORMAT and sample columns: Glow's ``genotypes`` array, one struct per sample column.

``GT`` becomes ``phased`` (the first allele separator is '|'; for a haploid call, its own VCF 4.4
phasing indicator, ``|0``) and ``calls`` (allele indices, a missing allele is -1: ``./.`` is
``[-1, -1]``, haploid ``1`` is ``[1]``; VCF 4.4's indicator before the first allele, ``/0|1``, is
read past). Trailing FORMAT
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
from python_ingest.genomics_text import DOT, SampleTokens, Spans, list_array
from python_ingest.genomics_values import not_typed, typed_values


@dataclass
class GenotypeResult:
    array: pa.Array  # list<struct> per row
    errors: dict[int, str] = field(default_factory=dict)  # row -> reason


def format_keys(formats: Spans) -> tuple[list[list[str]], np.ndarray]:
    """(keys of each distinct FORMAT string, index of each row's FORMAT among them)."""
    encoded = pc.dictionary_encode(formats.strings())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    keys = [[] if f in (".", "") else f.split(":") for f in encoded.dictionary.to_pylist()]
    return keys, codes


def parse_genotypes(
    formats: Spans, tokens: SampleTokens | None, header: Header, n_alt: np.ndarray, uses_gt: bool
) -> GenotypeResult:
    """Genotypes of ``len(formats)`` rows from the ``tokens`` of their sample columns."""
    n, n_samples = len(formats), len(header.samples)
    spec = genotype_fields(header, uses_gt)
    struct_fields = [pa.field("sampleId", pa.string())] + [f for _, f, _ in spec]
    list_type = pa.list_(pa.struct(struct_fields))
    result = GenotypeResult(pa.array([], list_type))
    if n_samples == 0 or tokens is None or n == 0:
        empty = pa.StructArray.from_arrays(
            [pa.array([], f.type) for f in struct_fields], fields=struct_fields
        )
        result.array = list_array(np.zeros(n, np.int64), empty, np.ones(n, bool), list_type)
        return result
    keys, codes = format_keys(formats)
    n_cells = n * n_samples
    counts = tokens.counts
    n_keys = np.array([len(k) for k in keys], dtype=np.int64)[codes]

    def fail(cell_mask: np.ndarray, reason) -> None:
        for cell in np.flatnonzero(cell_mask):
            row, column = divmod(int(cell), n_samples)
            if row not in result.errors:
                result.errors[row] = reason(int(cell), column + 1)

    cell_keys = np.repeat(n_keys, n_samples)
    fail(
        (counts > cell_keys) & (cell_keys > 0),
        lambda c, j: f"sample column {j} has {counts[c]} values for {cell_keys[c]} FORMAT keys",
    )
    children: list[pa.Array] = [sample_ids(header.samples, n)]
    for key, glow_field, definition in spec:
        if key == "GT" and glow_field.name == "calls":
            continue
        slot, present = _slot(tokens, keys, codes, key, n_samples)
        if key == "GT":
            calls, phased = _calls(slot, present, np.repeat(n_alt, n_samples), fail)
            children += [phased, calls]
            continue
        sep = b";" if key == "FT" else b","  # FT holds filter codes like FILTER: q10;s50
        typed = typed_values(slot, present, glow_field.type, definition.type, sep)
        children.append(typed.array)
        fail(
            typed.bad,
            lambda c, j, key=key, t=typed, d=definition, kind=glow_field.type: (
                f"FORMAT/{key} '{t.bad_text.get(c, '')}' of sample column {j} "
                + not_typed(t.bad_text.get(c, ""), d.type, kind)
            ),
        )
    struct = pa.StructArray.from_arrays(children, fields=struct_fields)
    offsets = np.arange(0, n_cells + 1, n_samples, dtype=np.int32)
    result.array = pa.ListArray.from_arrays(pa.array(offsets), struct, type=list_type)
    return result


def _slot(
    tokens: SampleTokens, keys: list[list[str]], codes: np.ndarray, key: str, n_samples: int
) -> tuple[Spans, np.ndarray]:
    """The value of FORMAT ``key`` in every cell (``present`` False where the cell lacks it)."""
    by_format = np.array([k.index(key) if key in k else -1 for k in keys], dtype=np.int64)
    if (by_format == by_format[0]).all():  # one FORMAT layout for the block: the usual case
        position = np.full(len(tokens.counts), by_format[0])
    else:
        position = np.repeat(by_format[codes], n_samples)
    return tokens.slot(position)


def sample_ids(samples: list[str], n_rows: int) -> pa.Array:
    """The header's sample names repeated for every row, built without a Python list per cell."""
    encoded = [s.encode("utf-8") for s in samples]
    lengths = np.array([len(b) for b in encoded], dtype=np.int64)
    row_bytes = int(lengths.sum())
    data = np.tile(np.frombuffer(b"".join(encoded), dtype=np.uint8), n_rows)
    offsets = np.zeros(n_rows * len(samples) + 1, dtype=np.int64)
    np.cumsum(np.tile(lengths, n_rows), out=offsets[1:])
    assert offsets[-1] == row_bytes * n_rows
    array = pa.Array.from_buffers(
        pa.large_string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return array.cast(pa.string())


def _calls(slot: Spans, present: np.ndarray, n_alt: np.ndarray, fail) -> tuple[pa.Array, pa.Array]:
    """(calls, phased) per cell from the GT values; broken genotypes are reported to ``fail``.

    The common diploid ``a/b`` / ``a|b`` with one-digit alleles is decoded straight from its
    three bytes; anything else (haploid, polyploid, allele 10+) is split on '/' and '|'.
    """
    n = len(slot)
    data = slot.buf.data
    start = np.minimum(slot.start, len(data) - 3)
    b0, b1, b2 = data[start], data[start + 1], data[start + 2]
    d0, d2 = b0 - np.uint8(48), b2 - np.uint8(48)
    fast = (
        present
        & (slot.length == 3)
        & ((b1 == ord("/")) | (b1 == ord("|")))
        & ((d0 <= 9) | (b0 == DOT))
        & ((d2 <= 9) | (b2 == DOT))
    )
    counts = np.where(fast, 2, 0)
    phased = fast & (b1 == ord("|"))
    slow = np.flatnonzero(present & ~fast)
    gt = slot.take(slow)
    # VCF 4.4 may write the first allele's phasing too ("/0|1", "|0" haploid): it is read past,
    # and a haploid call is phased when its own indicator says so.
    lead = gt.first_byte()
    prefixed = ((lead == ord("/")) | (lead == ord("|"))) & (gt.length > 1)
    gt = Spans(gt.buf, gt.start + prefixed, gt.end)
    alleles, slow_counts = gt.split(b"/|")
    missing = alleles.missing() & (alleles.length == 1)
    slow_values, ok = alleles.parse_int(lo=0)
    ok |= missing
    slow_values = np.where(missing, -1, slow_values)
    owner = slow[np.repeat(np.arange(len(slow)), slow_counts)]
    counts[slow] = slow_counts
    seps = slot.buf.positions(b"/|")
    if len(seps) and len(slow):
        first_sep = data[seps[np.minimum(np.searchsorted(seps, gt.start), len(seps) - 1)]]
        phased[slow] = (slow_counts > 1) & (first_sep == ord("|"))
    phased[slow] |= (slow_counts == 1) & prefixed & (lead == ord("|"))
    offsets = np.cumsum(counts) - counts
    values = np.full(int(counts.sum()), -1, dtype=np.int64)
    fast_cells = np.flatnonzero(fast)
    values[offsets[fast_cells]] = np.where(
        b0[fast_cells] == DOT, -1, d0[fast_cells].astype(np.int64)
    )
    values[offsets[fast_cells] + 1] = np.where(
        b2[fast_cells] == DOT, -1, d2[fast_cells].astype(np.int64)
    )
    within = np.arange(len(owner)) - np.repeat(np.cumsum(slow_counts) - slow_counts, slow_counts)
    values[offsets[owner] + within] = slow_values
    broken = np.zeros(n, dtype=bool)
    broken[owner[~ok]] = True
    fail(broken, lambda c, j: f"GT '{slot.text(c)}' of sample column {j} is not a genotype")
    cell_of_value = np.repeat(np.arange(n), counts)
    beyond = np.zeros(n, dtype=bool)
    beyond[cell_of_value[values > n_alt[cell_of_value]]] = True
    fail(
        beyond & ~broken,
        lambda c, j: (
            f"GT '{slot.text(c)}' of sample column {j} exceeds the {n_alt[c]} ALT allele(s)"
        ),
    )
    calls = list_array(counts, pa.array(values.astype(np.int32)), present, pa.list_(pa.int32()))
    return calls, pa.array(phased, pa.bool_())
