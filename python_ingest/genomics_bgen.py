"""BGEN files (imputed genotype probabilities, UK Biobank's format) to Glow's BGEN schema.

One ``genomics_variants`` row per variant block, with exactly the columns of Glow's ``bgen``
data source (``VariantSchemas.bgenDefaultSchema``; its default options: sample ids included,
hard calls emitted at threshold 0.9), then ``_source_locator`` (``variant K byte OFFSET
CHROM:POS``) and ``_record_hash`` (sha256 of the variant block's bytes as stored):

=======================  =====================  ==============================================
column                   type                   from the BGEN variant block
=======================  =====================  ==============================================
contigName               string                 chromosome
start                    long                   position - 1 (0-based)
end                      long                   start + len(first allele)
names                    array<string>          [variant id, rsid]: empty or repeated ids
                                                dropped, null if none is left
referenceAllele          string                 first allele
alternateAlleles         array<string>          the other alleles ([] for a single allele)
genotypes                array<struct>          one per sample, in file order:
  .sampleId              string                 sample block, else the sibling ``.sample``
                                                file (column ID_2, else its first column);
                                                null when neither names the samples
  .phased                boolean                the block's phased flag
  .calls                 array<int>             hard calls (``genomics_bgen_probs``)
  .ploidy                int                    the sample's ploidy (also when missing)
  .posteriorProbabilities array<double>         every probability, the left-out last one
                                                restored; null for a missing sample
=======================  =====================  ==============================================

Glow writes ``[]`` for a missing sample's probabilities; we write null, as the VCF reader does
for ``GP=.,.,.`` in the same column, so that "no value" reads the same whatever the source.
Glow's VCF-only columns (``qual``, ``filters``, ``splitFromMultiAllelic``, ``INFO_*``) are absent
(null after the Delta merge); ``ploidy`` joins the genotype struct.

The ``.sample`` file is the sibling named like the BGEN (``x.bgen`` -> ``x.sample``), else the
nearest shorter dotted prefix (``cohort.chr1.bgen`` -> ``cohort.sample``), and is used only when
the BGEN has no sample block (as Glow does). ``genomics_samples`` gets one ``bgen`` row per named
sample (``fields`` holds the ``.sample`` row).

Layouts 1 (v1.1) and 2 (v1.2, v1.3) are read, uncompressed, zlib or zstd (zstd needs the
``zstandard`` package; without it such a file is quarantined with that reason), with 1 to 32
bits per probability, any ploidy, phasing and number of alleles. Glow reads layout 2 with 8, 16
or 32 bits only. The header and ``.sample`` file are read by ``genomics_bgen_header``; genotype
blocks are framed one by one here and decoded a batch of variants at a time by
``genomics_bgen_probs``.

A variant whose genotype block is broken (does not decompress, wrong size, impossible values)
or whose identifying data is (not UTF-8, no allele) is quarantined alone and the next one is
read; a variant whose own length fields run past the end of the file stops the reading
(nothing after it can be delimited), and a file that holds fewer variants than its header
declares gets one ``file`` entry for the loss. A file that is not BGEN, a header BGEN does not
allow, or a ``.sample`` file that cannot name the samples is quarantined whole.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from python_ingest.genomics import VARIANTS_TABLE
from python_ingest.genomics_bgen_header import (
    BgenHeader,
    parse_header,
    read_sample_file,
    samples_table,
    sibling_sample_file,
    u16,
    u32,
)
from python_ingest.genomics_bgen_probs import (
    BgenError,
    BgenFramingError,
    Block,
    decode,
    frame_layout1,
    frame_layout2,
)
from python_ingest.genomics_genotypes import sample_ids
from python_ingest.genomics_manifest import SAMPLES_TABLE
from python_ingest.genomics_schema import BASE_FIELDS
from python_ingest.genomics_text import list_array
from python_ingest.model import READER_LINEAGE, FileOutcome, Quarantined
from python_ingest.source_bytes import read_source

GENOTYPE_FIELDS = (
    pa.field("sampleId", pa.string()),
    pa.field("phased", pa.bool_()),
    pa.field("calls", pa.list_(pa.int32())),
    pa.field("ploidy", pa.int32()),
    pa.field("posteriorProbabilities", pa.list_(pa.float64())),
)
GENOTYPES_TYPE = pa.list_(pa.struct(list(GENOTYPE_FIELDS)))
BGEN_SCHEMA = pa.schema([*BASE_FIELDS[:6], pa.field("genotypes", GENOTYPES_TYPE), *READER_LINEAGE])
BATCH_GENOTYPES = 1 << 20  # genotypes per Arrow batch: cache-sized, bounded memory
MAX_BLOCK_BYTES = 1 << 31  # a declared decompressed size beyond this is not believed


@dataclass
class _Batch:
    """Framed variants not yet decoded and turned into an Arrow batch."""

    rows: list[dict[str, object]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


class BgenReader:
    """Reads one BGEN file's variant blocks into ``genomics_variants`` rows."""

    def __init__(self, raw: bytes, header: BgenHeader, ids: list[str] | None) -> None:
        self.raw, self.header, self.ids = raw, header, ids
        self.quarantined: list[Quarantined] = []
        self.batches: list[pa.RecordBatch] = []
        self.landed = 0
        self._ids: dict[int, pa.Array] = {}  # sampleId column by batch length (reused)

    def read(self) -> pa.Table:
        raw, header = self.raw, self.header
        batch, at, number = _Batch(), header.first_variant, 0
        per_batch = max(1, BATCH_GENOTYPES // max(1, header.n_samples))
        while at < len(raw):
            number += 1
            locator = f"variant {number} byte {at}"
            try:
                row, after, problem = self._identifying(at)
                locator += f" {row['contigName']}:{row['start'] + 1}"
                stored, end = self._genotype_block(after)
            except BgenFramingError as exc:
                self.quarantined.append(Quarantined(locator, f"{exc}; nothing after it is read"))
                break
            try:
                if problem:
                    raise BgenError(problem)
                block = self._frame(stored, len(row["alternateAlleles"]) + 1)
            except (BgenError, zlib.error) as exc:
                self.quarantined.append(Quarantined(locator, str(exc)))
            else:
                row["_source_locator"] = locator
                row["_record_hash"] = hashlib.sha256(memoryview(raw)[at:end]).hexdigest()
                batch.rows.append(row)
                batch.blocks.append(block)
                if len(batch.blocks) >= per_batch:
                    self._flush(batch)
                    batch = _Batch()
            at = end
        self._flush(batch)
        if number < header.n_variants:
            self.quarantined.append(
                Quarantined(
                    "file",
                    f"the header declares {header.n_variants} variants but only {number} could "
                    "be delimited: the file is cut short (truncated) and the rest are lost",
                )
            )
        return pa.Table.from_batches(self.batches, schema=BGEN_SCHEMA)

    def _string(self, at: int, width: int, what: str) -> tuple[str, int, str | None]:
        """(text, offset after it, what is wrong with it); only a cut-short string is fatal."""
        size = int.from_bytes(self.raw[at : at + width], "little")
        end = at + width + size
        if at + width > len(self.raw) or end > len(self.raw):
            raise BgenFramingError(f"its {what} runs past the end of the file (truncated)")
        data = self.raw[at + width : end]
        try:
            return data.decode("utf-8"), end, None
        except UnicodeDecodeError:
            return data.decode("utf-8", errors="replace"), end, f"its {what} is not UTF-8 text"

    def _identifying(self, at: int) -> tuple[dict[str, object], int, str | None]:
        """The variant identifying data (ids, chromosome, position, alleles), the offset after
        it, and the first thing wrong with it (the next variant can still be found then)."""
        raw, problems = self.raw, []
        if self.header.layout == 1:
            at += 4  # layout 1 repeats the number of samples here
        texts = []
        for what in ("variant id", "rsid", "chromosome"):
            text, at, problem = self._string(at, 2, what)
            texts.append(text)
            problems.append(problem)
        variant_id, rsid, chrom = texts
        if at + 6 > len(raw):
            raise BgenFramingError("its position runs past the end of the file (truncated)")
        position, at = u32(raw, at), at + 4
        n_alleles = 2
        if self.header.layout == 2:
            n_alleles, at = u16(raw, at), at + 2
        problems.append("it declares no alleles" if n_alleles == 0 else None)
        alleles = []
        for i in range(n_alleles):
            allele, at, problem = self._string(at, 4, f"allele {i + 1}")
            alleles.append(allele)
            problems.append(problem)
        start = position - 1
        row = {
            "contigName": chrom,
            "start": start,
            "end": start + len(alleles[0]) if alleles else start,
            "names": list(dict.fromkeys(n for n in (variant_id, rsid) if n)) or None,
            "referenceAllele": alleles[0] if alleles else None,
            "alternateAlleles": alleles[1:],
        }
        return row, at, next((p for p in problems if p), None)

    def _genotype_block(self, at: int) -> tuple[bytes, int]:
        """(the genotype block as stored, offset after it); nothing is decoded yet."""
        raw, header = self.raw, self.header
        if header.layout == 1 and not header.compression:
            size, start = 6 * header.n_samples, at
        else:
            size, start = u32(raw, at), at + 4
        if start + size > len(raw):
            raise BgenFramingError(
                f"its genotype block of {size} bytes runs past the end of the file (truncated)"
            )
        return raw[start : start + size], start + size

    def _frame(self, block: bytes, n_alleles: int) -> Block:
        """Decompress and frame one genotype block (BgenError: what is wrong with it)."""
        header = self.header
        if header.layout == 2 and header.compression:
            if len(block) < 4:
                raise BgenError("its genotype block is too short to hold its decompressed size")
            expected, block = u32(block, 0), block[4:]
            if expected > MAX_BLOCK_BYTES:
                raise BgenError(f"its genotype block claims {expected} bytes once decompressed")
            block = _decompress(block, header.compression, expected)
            if len(block) != expected:
                size = f"only {len(block)}" if len(block) < expected else "more than"
                raise BgenError(
                    f"its genotype block decompresses to {size} of the {expected} bytes it declares"
                )
        elif header.compression:
            block = _decompress(block, 1, 6 * header.n_samples)
        if header.layout == 1:
            return frame_layout1(block, header.n_samples)
        return frame_layout2(block, header.n_samples, n_alleles)

    def _flush(self, batch: _Batch) -> None:
        """Decode a batch at once; quarantine the variants whose values break a rule."""
        if not batch.blocks:
            return
        n = self.header.n_samples
        decoded, bad = decode(batch.blocks, n, explicit=self.header.layout == 1)
        for index, reason in sorted(bad.items()):
            row = batch.rows[index]
            self.quarantined.append(Quarantined(str(row["_source_locator"]), reason))
        rows = [row for i, row in enumerate(batch.rows) if i not in bad]
        if not rows:
            return
        ids = self._ids.get(len(rows))
        if ids is None:
            ids = self._ids[len(rows)] = (
                sample_ids(self.ids, len(rows))
                if self.ids is not None
                else pa.nulls(len(rows) * n, pa.string())
            )
        valid = np.ones(len(decoded.ploidy), dtype=bool)
        children = [
            ids,
            pa.array(decoded.phased, pa.bool_()),
            list_array(decoded.ploidy, pa.array(decoded.calls), valid, pa.list_(pa.int32())),
            pa.array(decoded.ploidy, pa.int32()),
            list_array(
                decoded.probability_counts,
                pa.array(decoded.probabilities, pa.float64()),
                ~decoded.missing,
                pa.list_(pa.float64()),
            ),
        ]
        struct = pa.StructArray.from_arrays(children, fields=list(GENOTYPE_FIELDS))
        offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32) * n)
        columns = {
            name: pa.array([row[name] for row in rows], BGEN_SCHEMA.field(name).type)
            for name in BGEN_SCHEMA.names
            if name != "genotypes"
        }
        columns["genotypes"] = pa.ListArray.from_arrays(offsets, struct, type=GENOTYPES_TYPE)
        self.batches.append(pa.RecordBatch.from_pydict(columns, schema=BGEN_SCHEMA))
        self.landed += len(rows)


def _decompress(data: bytes, compression: int, expected: int) -> bytes:
    """zlib (1) or zstd (2) data, never inflated past ``expected`` bytes (plus one to notice)."""
    if compression == 2:
        import zstandard

        parts, size = [], 0
        try:
            with zstandard.ZstdDecompressor().stream_reader(data) as reader:
                while size <= expected and (part := reader.read(expected + 1 - size)):
                    parts.append(part)
                    size += len(part)
        except zstandard.ZstdError as exc:
            raise BgenError(f"its genotype block does not decompress (zstd: {exc})") from None
        return b"".join(parts)
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, expected + 1)
    except zlib.error as exc:
        raise BgenError(f"its genotype block does not decompress (zlib: {exc})") from None
    if not inflater.eof and len(out) <= expected:
        raise BgenError("its genotype block's compressed data is cut short")
    return out


def read_bgen(path: Path) -> FileOutcome:
    """Land one BGEN file (with its sibling ``.sample`` file when it has no sample block)."""
    raw = read_source(path)
    sample_file = None
    try:
        header = parse_header(raw)
        ids = header.sample_ids
        source = sibling_sample_file(path) if ids is None else None
        if source is not None:
            sample_file = read_sample_file(source, header.n_samples)
            ids = sample_file.ids
    except BgenError as exc:
        return FileOutcome(quarantined=[Quarantined("file", str(exc))], records_read=1)
    reader = BgenReader(raw, header, ids)
    table = reader.read()
    outcome = FileOutcome(
        tables={VARIANTS_TABLE: table},
        quarantined=reader.quarantined,
        records_read=reader.landed + len(reader.quarantined),
        records_landed=reader.landed,
    )
    samples = samples_table(ids, sample_file)
    if samples is not None:
        outcome.tables[SAMPLES_TABLE] = samples
    return outcome
