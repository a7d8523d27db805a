"""Genomics bronze: VCF files to Glow's VCF schema, lab manifests to ``genomics_samples``.

Files: ``*.vcf``, ``*.vcf.gz`` / ``*.vcf.bgz`` (BGZF or plain gzip: the compression is read
from the bytes, not the name, so a lab's plain ``gzip`` file lands like a tabix-ready one),
``*.bcf`` (decoded by htslib through pysam into VCF text, then read like any VCF; its
locators count lines of that text), sample manifests ``*.csv`` / ``*.tsv``, BGEN ``*.bgen``
(with a sibling ``.sample`` when present; ``genomics_bgen.py``) and PLINK filesets named by
their ``*.bed`` (``.bim``/``.fam`` beside it; ``genomics_plink.py``), which land in the same
table with Glow's bgen/plink field names. Index files (``.tbi``, ``.csi``, ``.bgi``) and UCSC
BED region files (no PLINK magic, no ``.bim``/``.fam``) are not discovered. Siblings
(``.bim``, ``.fam``, ``.sample``) are hashed with the file that names them (``companions``),
so a changed sibling re-lands its fileset.

``genomics_variants`` has exactly the columns of Glow's VCF data source (``flattenInfoFields``,
its default), one row per data line, then ``_source_locator`` (``line N CHROM:POS``) and
``_record_hash`` (sha256 of the line):

=====================  ==================  ================================================
column                 type                from the VCF
=====================  ==================  ================================================
contigName             string              CHROM
start                  long                POS - 1 (0-based)
end                    long                INFO/END if present, else start + len(REF)
names                  array<string>       ID split on ';'; null for '.'
referenceAllele        string              REF
alternateAlleles       array<string>       ALT split on ','; [] for '.' (no ALT allele)
qual                   double              QUAL; null for '.'; NaN / Inf in any spelling
filters                array<string>       FILTER split on ';' (PASS is ["PASS"]); null for '.'
splitFromMultiAllelic  boolean             false (nothing is split here)
INFO_<key>             by header           one per ##INFO line, in header order (see below)
genotypes              array<struct>       one per sample column, in header order
=====================  ==================  ================================================

INFO and FORMAT types follow the header as in Glow's ``VCFSchemaInferrer``: Integer -> int,
Float -> double, Flag -> boolean, String/Character -> string; Number 0 or 1 -> scalar, any
other Number -> array. CSQ and ANN are arrays of annotation structs. The genotype struct is
``sampleId`` then, per ##FORMAT line in header order: GT -> ``phased`` boolean, ``calls``
array<int> (missing allele -1); DP -> ``depth`` int; GQ -> ``conditionalQuality`` int; AD ->
``alleleDepths``, PL -> ``phredLikelihoods``, HQ -> ``haplotypeQualities``, EC ->
``expectedAlleleCounts`` array<int>; GL -> ``genotypeLikelihoods``, GP ->
``posteriorProbabilities`` array<double>; FT -> ``filters`` array<string> (split on ';'); MQ ->
``mappingQuality`` int; any other key by its own name (PS stays ``PS``). The types of these
renamed fields are pinned (see ``genomics_schema``); Glow's field order within the struct and
among INFO columns comes from a hash map, ours from the header (readers match by name).

The schema is per file (INFO columns and genotype fields follow the header); the job merges
files with permissive promotion and Delta schema evolution. Value rules are in
``genomics_values``, what makes a line malformed in ``genomics_vcf``, manifests and sample rows
in ``genomics_manifest``. Each malformed line is quarantined alone (``line N CHROM:POS``) and
the rest of its file lands; a gzip stream cut short lands what decompressed and adds one
``file`` quarantine entry for the loss.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from python_ingest.genomics_manifest import SAMPLES_TABLE, read_manifest, vcf_samples
from python_ingest.genomics_schema import parse_header
from python_ingest.genomics_vcf import VcfBody
from python_ingest.model import FileOutcome, Quarantined
from python_ingest.source_bytes import read_source

VARIANTS_TABLE = "genomics_variants"
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".vcf.bgzf", ".gvcf", ".gvcf.gz", ".bcf")
MANIFEST_SUFFIXES = (".csv", ".tsv")


def _bgzf_blocks(raw: bytes) -> list[tuple[int, int]] | None:
    """(offset, size) of every BGZF block, or None if the stream is not (entirely) BGZF.

    A BGZF block is a gzip member whose extra field ``BC`` gives its size: inflating each
    member's raw deflate data directly skips the gzip module's buffering and CRC pass.
    """
    blocks, offset = [], 0
    while offset < len(raw):
        head = raw[offset : offset + 18]
        if len(head) < 18 or head[:4] != b"\x1f\x8b\x08\x04" or head[12:14] != b"BC":
            return None
        size = int.from_bytes(head[16:18], "little") + 1
        blocks.append((offset, size))
        offset += size
    return blocks


def decompress(raw: bytes) -> tuple[bytes, str | None]:
    """A gzip stream of any number of members (BGZF is many), or the bytes as they are.

    Returns what could be decompressed and, if the stream is cut short or corrupt, why.
    """
    if raw[:2] != b"\x1f\x8b":
        return raw, None
    blocks = _bgzf_blocks(raw)
    if blocks is not None and blocks[-1][0] + blocks[-1][1] == len(raw):
        try:
            view, out = memoryview(raw), []
            for a, n in blocks:
                data = zlib.decompress(view[a + 18 : a + n - 8], -15)
                if zlib.crc32(data) != int.from_bytes(view[a + n - 8 : a + n - 4], "little"):
                    raise zlib.error(f"CRC mismatch in the BGZF block at byte {a}")
                out.append(data)
            return b"".join(out), None
        except zlib.error:
            pass  # a damaged block: the careful path below says how far the data goes
    out: list[bytes] = []
    view, offset = memoryview(raw), 0
    while offset < len(raw) and raw[offset : offset + 2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        try:
            out.append(inflater.decompress(view[offset:]))
        except zlib.error as exc:
            done = sum(len(b) for b in out)
            return b"".join(out), f"the gzip stream is corrupt after {done} bytes ({exc})"
        if not inflater.eof:
            out.append(inflater.flush())
            done = sum(len(b) for b in out)
            return b"".join(out), f"the gzip stream is cut short (truncated) after {done} bytes"
        offset = len(raw) - len(inflater.unused_data)
    return b"".join(out), None


def bcf_text(path: Path) -> tuple[bytes, list[Quarantined]]:
    """A BCF file rendered as VCF text by htslib (records htslib cannot decode are reported)."""
    import pysam

    problems: list[Quarantined] = []
    with pysam.VariantFile(str(path)) as vf:
        parts = [str(vf.header).encode()]
        index = 0
        while True:
            index += 1
            try:
                record = next(vf)
            except StopIteration:
                break
            except (OSError, ValueError) as exc:
                problems.append(Quarantined(f"record {index}", f"htslib cannot decode it: {exc}"))
                if len(problems) > 100:
                    break
                continue
            parts.append(str(record).encode())
    return b"".join(parts), problems


def header_end(text: bytes) -> tuple[list[str], int] | None:
    """(header lines through ``#CHROM``, offset of the first body byte), or None without one."""
    lines: list[str] = []
    offset = 0
    while offset < len(text) and text[offset : offset + 1] == b"#":
        nl = text.find(b"\n", offset)
        nl = len(text) if nl < 0 else nl
        line = text[offset:nl].decode("utf-8", errors="replace").rstrip("\r")
        lines.append(line)
        offset = nl + 1
        if line.startswith("#CHROM"):
            return lines, min(offset, len(text))
    return None


def is_plink_bed(path: Path) -> bool:
    from python_ingest.genomics_plink import is_plink_bed as check

    return check(path)


class GenomicsReader:
    """Reads VCF/BCF files and lab sample manifests (stateless: safe in a process pool)."""

    modality = "genomics"
    tables = (VARIANTS_TABLE, SAMPLES_TABLE)

    def discover(self, source: Path) -> list[Path]:
        found = []
        for path in source.rglob("*"):
            parts = path.relative_to(source).parts
            if any(p.startswith((".", "_")) for p in parts) or not path.is_file():
                continue
            name = path.name.lower()
            if (
                name.endswith(VCF_SUFFIXES)
                or name.endswith(MANIFEST_SUFFIXES)
                or name.endswith(".bgen")
                or (name.endswith(".bed") and is_plink_bed(path))
            ):
                found.append(path)
        return sorted(found)

    def companions(self, path: Path) -> list[Path]:
        """Siblings that give a PLINK ``.bed`` or a BGEN its meaning (hashed with it)."""
        name = path.name.lower()
        if name.endswith(".bed"):
            from python_ingest.genomics_plink import siblings

            return list(siblings(path))
        if name.endswith(".bgen"):
            from python_ingest.genomics_bgen_header import sibling_sample_file

            sample = sibling_sample_file(path)
            return [sample] if sample is not None else []
        return []

    def read(self, path: Path) -> FileOutcome:
        name = path.name.lower()
        if name.endswith(MANIFEST_SUFFIXES):
            return read_manifest(path)
        if name.endswith(".bgen"):  # imported here: VCF-only runs never load the BGEN decoder
            from python_ingest.genomics_bgen import read_bgen

            return read_bgen(path)
        if name.endswith(".bed"):  # a PLINK fileset, named by its .bed (.bim/.fam beside it)
            from python_ingest.genomics_plink import read_plink

            return read_plink(path)
        problems: list[Quarantined] = []
        if name.endswith(".bcf"):
            text, problems = bcf_text(path)
        else:
            text, damage = decompress(read_source(path))
            if damage:
                problems.append(Quarantined("file", damage + "; the records after it are lost"))
        return self._read_text(text, problems)

    def _read_text(self, text: bytes, problems: list[Quarantined]) -> FileOutcome:
        outcome = FileOutcome(quarantined=list(problems), records_read=len(problems))
        found = header_end(text)
        if found is None:
            reason = (
                "the file is empty"
                if not text.strip()
                else "the file has no #CHROM header line, so its columns and samples are unknown"
            )
            outcome.quarantined.append(Quarantined("file", reason, text[:512]))
            outcome.records_read += 1
            return outcome
        lines, body_start = found
        header = parse_header(lines)
        if text and np.frombuffer(text, dtype=np.uint8).max() >= 0x80:
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:  # VCF is ASCII (UTF-8 since 4.3): keep what is readable
                text = text.decode("utf-8", errors="replace").encode("utf-8")
                body_start = header_end(text)[1]
        body = VcfBody(text, header, body_start).parse()
        for locator, reason, line in body.errors:
            outcome.quarantined.append(Quarantined(locator, reason, line))
        outcome.records_read += body.records
        outcome.records_landed = body.table.num_rows
        outcome.tables[VARIANTS_TABLE] = body.table
        outcome.tables[SAMPLES_TABLE] = vcf_samples(header.samples, header.meta)
        return outcome


def read_vcf_table(path: Path) -> pa.Table:
    """The ``genomics_variants`` rows of one file (a convenience for notebooks and tests)."""
    return GenomicsReader().read(path).tables.get(VARIANTS_TABLE, pa.table({}))
