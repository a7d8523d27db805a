"""The VCF body: data lines to Glow rows, each malformed line quarantined on its own.

A data line is one record. It lands when it follows the spec, and is quarantined whole with
the first thing wrong with it otherwise (one reason per line; the job counts lines):

* the number of tab-separated columns differs from the ``#CHROM`` line's (a truncated write);
* CHROM is empty; POS is not a non-negative integer (``55191822.0``);
* REF is empty or has a character outside A,C,G,T,N (IUPAC ambiguity codes, which real
  references carry at a few positions, are accepted); an ALT allele is neither bases (with
  ``*``), a symbolic ``<ID>``, nor a breakend;
* QUAL is not a number; an INFO or FORMAT value is not of its header Type; a genotype is broken
  (see ``genomics_genotypes``).

Blank lines and ``#`` lines inside the body are no records. Locators read ``line N CHROM:POS``
with N the 1-based line in the decompressed file (header included) and POS the leading digits
of the POS column, so a line whose POS is ``55191822.0`` is still found as ``chr7:55191822``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.genomics_genotypes import parse_genotypes
from python_ingest.genomics_info import parse_info
from python_ingest.genomics_schema import BASE_FIELDS, Header
from python_ingest.genomics_text import Buffer, Spans, list_array, sample_tokens
from python_ingest.model import READER_LINEAGE

# REF: A,C,G,T,N plus the IUPAC ambiguity codes (never the letters E F I J L O P Q X Z).
_REF = re.compile(r"^[ACGTNRYKMSWBDHV]+$", re.IGNORECASE)
# ALT: bases (and '*'), a symbolic allele, a breakend (t[p[, ]p]t, .t, t.).
_ALT = re.compile(
    r"^([ACGTNRYKMSWBDHV*]+|<[^<>]+>|\.?[ACGTN]+\.?|[ACGTN]*[\[\]][^\[\]]+[\[\]][ACGTN]*)$",
    re.IGNORECASE,
)


@dataclass
class BodyResult:
    table: pa.Table
    errors: list[tuple[str, str, bytes]] = field(default_factory=list)  # locator, reason, line
    records: int = 0


BLOCK_BYTES = 2 << 20  # lines are parsed in blocks of about this much text: bounded memory


def _keep(table: pa.Table, keep: np.ndarray) -> pa.Table:
    """The rows where ``keep`` is True, as zero-copy slices between the (few) dropped rows.

    The slices are not combined into one chunk: the table reaches the job's process as Arrow
    IPC, which writes only the rows of a slice, and the job combines chunks once per commit.
    """
    if keep.all():
        return table
    edges = np.flatnonzero(np.diff(np.concatenate([[False], keep, [False]]).astype(np.int8)))
    runs = [table.slice(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return pa.concat_tables(runs) if runs else table.slice(0, 0)


class VcfBody:
    """Parses every data line after the header of one decompressed VCF text, block by block."""

    def __init__(self, text: bytes, header: Header, body_start: int) -> None:
        self.text, self.header, self.body_start = text, header, body_start

    def parse(self) -> BodyResult:
        text, header = self.text, self.header
        body = text[self.body_start :]
        uses_gt = "GT" in header.formats or re.search(rb"\tGT[:\t\r\n]", body) is not None
        tables, result = [], BodyResult(pa.table({}))
        start, line_no = self.body_start, header.lines + 1
        while start < len(text):
            cut = text.find(b"\n", min(start + BLOCK_BYTES, len(text) - 1))
            stop = len(text) if cut < 0 else cut + 1
            table, errors, records = _Block(text[start:stop], header, line_no, uses_gt).parse()
            tables.append(table)
            result.errors += errors
            result.records += records
            line_no += text.count(b"\n", start, stop)
            start = stop
        if not tables:
            tables.append(_Block(b"", header, line_no, uses_gt).parse()[0])
        result.table = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
        return result


class _Block:
    """Whole lines of the body, parsed column-wise."""

    def __init__(self, text: bytes, header: Header, first_line_no: int, uses_gt: bool) -> None:
        self.header, self.text, self.uses_gt = header, text, uses_gt
        self.buf = Buffer(text)
        nl = self.buf.positions(b"\n")
        starts = np.concatenate([[0], nl + 1]).astype(np.int64)
        ends = np.concatenate([nl, [len(text)]]).astype(np.int64)
        line_no = first_line_no + np.arange(len(starts))
        data = self.buf.data
        if len(data):
            ends = ends - ((ends > starts) & (data[np.maximum(ends - 1, 0)] == ord("\r")))
        lines = Spans(self.buf, starts, ends)
        record = (lines.length > 0) & (lines.first_byte() != ord("#"))
        self.lines = lines.take(np.flatnonzero(record))
        self.line_no = line_no[record]
        self.errors: dict[int, str] = {}

    def _fail(self, rows: np.ndarray, reason) -> None:
        for row in rows:
            row = int(row)
            if row not in self.errors:
                self.errors[row] = reason(row)

    def parse(self) -> tuple[pa.Table, list[tuple[str, str, bytes]], int]:
        lines, header = self.lines, self.header
        n = len(lines)
        tabs = self.buf.positions(b"\t")
        lo = np.searchsorted(tabs, lines.start)
        n_cols = np.searchsorted(tabs, lines.end) - lo + 1
        allowed = {header.n_columns} | ({8, 9} if not header.samples else set())
        good = np.isin(n_cols, list(allowed))
        self._fail(
            np.flatnonzero(~good),
            lambda r: (
                f"line has {n_cols[r]} tab-separated columns where the header has "
                f"{header.n_columns}"
            ),
        )
        self.chrom_pos = self._chrom_pos(lo, n_cols)
        rows = np.flatnonzero(good)
        columns = self._fixed(rows, lo[rows], n_cols[rows])
        failed = np.fromiter(self.errors, dtype=np.int64, count=len(self.errors))
        keep = ~np.isin(rows, failed)
        table = _keep(pa.table(columns), keep) if len(rows) else self._empty_table()
        landed = rows[keep]
        table = table.append_column(READER_LINEAGE.field(0), self._locators(landed))
        table = table.append_column(READER_LINEAGE.field(1), self._hashes(landed))
        errors = [
            (self._locator(r), reason, self._line_bytes(r))
            for r, reason in sorted(self.errors.items())
        ]
        return table, errors, n

    def _column(self, lo: np.ndarray, n_cols: np.ndarray, rows: np.ndarray, j: int) -> Spans:
        """Column ``j`` (0-based) of the given lines, which have at least ``j + 1`` columns."""
        tabs = self.buf.positions(b"\t")
        top = max(len(tabs) - 1, 0)
        start = self.lines.start[rows] if j == 0 else tabs[np.minimum(lo + j - 1, top)] + 1
        last = j == n_cols - 1
        end = np.where(
            last, self.lines.end[rows], tabs[np.minimum(lo + j, top)] if len(tabs) else 0
        )
        return Spans(self.buf, np.asarray(start, dtype=np.int64), end.astype(np.int64))

    def _chrom_pos(self, lo: np.ndarray, n_cols: np.ndarray) -> tuple[Spans, Spans]:
        rows = np.arange(len(self.lines))
        chrom = self._column(lo, n_cols, rows, 0)
        has_pos = n_cols >= 2
        pos = self._column(lo, np.maximum(n_cols, 2), rows, 1)
        pos = Spans(
            self.buf, np.where(has_pos, pos.start, chrom.end), np.where(has_pos, pos.end, chrom.end)
        )
        return chrom, pos

    def _fixed(self, rows: np.ndarray, lo: np.ndarray, n_cols: np.ndarray) -> dict[str, pa.Array]:
        col = {j: self._column(lo, n_cols, rows, j) for j in range(8)}
        out: dict[str, pa.Array] = {}
        chrom = col[0]
        self._fail(rows[chrom.length == 0], lambda r: "CHROM is empty")
        pos, pos_ok = col[1].parse_int(lo=0, hi=2**62)
        self._fail(rows[~pos_ok], lambda r: f"POS '{self.chrom_pos[1].text(r)}' is not an integer")
        out["contigName"] = chrom.strings()
        start = pos - 1
        ref = col[3]
        self._check_unique(rows, ref.strings(), _REF, "REF '{}' has a base outside A,C,G,T,N")
        alt_present = ~col[4].missing()
        alt_rows = np.flatnonzero(alt_present)
        alleles, alt_counts = col[4].take(alt_rows).split(b",")
        allele_strings = alleles.strings()
        owner = rows[alt_rows[np.repeat(np.arange(len(alt_rows)), alt_counts)]]
        self._check_unique(owner, allele_strings, _ALT, "ALT allele '{}' is not a valid allele")
        n_alt = np.zeros(len(rows), dtype=np.int64)
        n_alt[alt_rows] = alt_counts
        info = parse_info(col[7], self.header)
        for i, reason in info.errors.items():
            self.errors.setdefault(int(rows[i]), reason)
        out["start"] = pa.array(start, pa.int64())
        out["end"] = pa.array(np.where(info.has_end, info.end, start + ref.length), pa.int64())
        out["names"] = self._split_list(col[2], b";")
        out["referenceAllele"] = ref.strings()
        out["alternateAlleles"] = list_array(
            n_alt, allele_strings, np.ones(len(rows), bool), pa.list_(pa.string())
        )
        qual_rows = np.flatnonzero(~col[5].missing())
        qual_values, qual_ok = col[5].take(qual_rows).parse_float()
        self._fail(
            rows[qual_rows[~qual_ok]], lambda r: f"QUAL '{self._field(r, 5)}' is not a number"
        )
        qual = np.full(len(rows), np.nan)
        qual[qual_rows] = qual_values
        qual_valid = np.zeros(len(rows), dtype=bool)
        qual_valid[qual_rows] = qual_ok
        out["qual"] = pa.array(qual, pa.float64(), mask=~qual_valid)
        out["filters"] = self._split_list(col[6], b";")
        out["splitFromMultiAllelic"] = pa.array(np.zeros(len(rows), dtype=bool))
        out.update(info.columns)
        out["genotypes"] = self._genotypes(rows, lo, n_cols, n_alt)
        return out

    def _genotypes(
        self, rows: np.ndarray, lo: np.ndarray, n_cols: np.ndarray, n_alt: np.ndarray
    ) -> pa.Array:
        has_format = n_cols > 8
        formats = self._column(lo, np.maximum(n_cols, 9), rows, 8)
        formats = Spans(
            self.buf, np.where(has_format, formats.start, 0), np.where(has_format, formats.end, 0)
        )
        tokens = None
        if self.header.samples and len(rows):
            tabs = self.buf.positions(b"\t")
            tokens = sample_tokens(self.buf, tabs[lo + 8], self.lines.end[rows])
        result = parse_genotypes(formats, tokens, self.header, n_alt, self.uses_gt)
        for i, reason in result.errors.items():
            self.errors.setdefault(int(rows[i]), reason)
        return result.array

    def _split_list(self, spans: Spans, sep: bytes) -> pa.Array:
        """``.`` -> null, else the values split on ``sep`` (ID on ';', FILTER on ';')."""
        present = ~spans.missing()
        idx = np.flatnonzero(present)
        parts, counts = spans.take(idx).split(sep)
        all_counts = np.zeros(len(spans), dtype=np.int64)
        all_counts[idx] = counts
        return list_array(all_counts, parts.strings(), present, pa.list_(pa.string()))

    def _check_unique(
        self, rows: np.ndarray, strings: pa.Array, pattern: re.Pattern, message: str
    ) -> None:
        """Validate each distinct value once (REF and ALT repeat a handful of strings)."""
        if not len(strings):
            return
        encoded = pc.dictionary_encode(strings)
        bad = [i for i, s in enumerate(encoded.dictionary.to_pylist()) if not pattern.match(s)]
        if bad:
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            hit = np.flatnonzero(np.isin(codes, bad))
            texts = encoded.dictionary.to_pylist()
            for i in hit:
                self.errors.setdefault(int(rows[i]), message.format(texts[codes[i]]))

    def _field(self, row: int, j: int) -> str:
        return self._line_bytes(row).split(b"\t")[j].decode("utf-8", errors="replace")

    def _line_bytes(self, row: int) -> bytes:
        return self.text[self.lines.start[row] : self.lines.end[row]]

    def _locator(self, row: int) -> str:
        chrom, pos = self.chrom_pos
        digits = re.match(r"[0-9]*", pos.text(row)).group(0) or pos.text(row)[:40]
        return f"line {self.line_no[row]} {chrom.text(row)[:200]}:{digits}"

    def _locators(self, rows: np.ndarray) -> pa.Array:
        """``line N CHROM:POS`` of landed lines (their POS is valid, so it is all digits)."""
        chrom, pos = self.chrom_pos
        numbers = pa.array(self.line_no[rows]).cast(pa.string())
        site = pc.binary_join_element_wise(
            chrom.take(rows).strings(), pos.take(rows).strings(), ":"
        )
        return pc.binary_join_element_wise("line", numbers, site, " ")

    def _hashes(self, rows: np.ndarray) -> pa.Array:
        """sha256 of each line, hex: digests in a loop, hex and Arrow in bulk."""
        view = memoryview(self.text)
        starts, ends = self.lines.start[rows].tolist(), self.lines.end[rows].tolist()
        sha256 = hashlib.sha256
        digests = b"".join([sha256(view[a:b]).digest() for a, b in zip(starts, ends, strict=True)])
        data = np.frombuffer(digests.hex().encode("ascii"), dtype=np.uint8)
        offsets = np.arange(0, 64 * len(rows) + 1, 64, dtype=np.int32)
        return pa.Array.from_buffers(
            pa.string(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )

    def _empty_table(self) -> pa.Table:
        fields = list(BASE_FIELDS)
        empty = Spans(self.buf, np.zeros(0, np.int64), np.zeros(0, np.int64))
        info = parse_info(empty, self.header)
        fields += [pa.field(k, v.type) for k, v in info.columns.items()]
        genotypes = parse_genotypes(empty, None, self.header, np.zeros(0, np.int64), self.uses_gt)
        fields.append(pa.field("genotypes", genotypes.array.type))
        return pa.schema(fields).empty_table()
