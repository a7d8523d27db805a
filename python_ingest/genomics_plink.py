"""PLINK 1 binary filesets (``.bed`` + ``.bim`` + ``.fam``) to Glow's PLINK schema.

The ``.bed`` is the unit (the file the job hashes and ``_source_file`` names); its ``.bim``
(one variant per line) and ``.fam`` (one sample per line) are the siblings with the same
prefix, as Glow's ``plink`` data source requires. One ``genomics_variants`` row per variant,
with exactly Glow's columns (``VariantSchemas.plinkSchema``, sample ids included), then
``_source_locator`` (``bim line N ID CHROM:BP``) and ``_record_hash`` (sha256 of the ``.bim``
line and the variant's ``.bed`` block):

==================  =================  ========================================================
column              type               from the fileset
==================  =================  ========================================================
contigName          string             .bim chromosome code as written (PLINK writes X as 23,
                                       Y 24, XY 25, MT 26)
names               array<string>      [.bim variant id]; null for "." (no id)
position            double             .bim genetic position (centimorgans)
start               long               .bim base-pair coordinate - 1 (0-based)
end                 long               start + len(allele 2)
referenceAllele     string             .bim allele 2 (PLINK's major allele, usually the ref)
alternateAlleles    array<string>      [.bim allele 1]; [] when allele 1 is "0" (monomorphic)
genotypes           array<struct>      one per .fam line, in order:
  .sampleId         string             FID_IID (Glow's ``mergeFidIid`` default)
  .calls            array<int>         from the 2-bit code: hom allele 1 [1, 1], het [0, 1],
                                       hom allele 2 [0, 0], missing [-1, -1]
==================  =================  ========================================================

Glow keeps a monomorphic variant's "0" as its alternate allele; "0" is PLINK's missing-allele
code, so we write no alternate allele, as the VCF reader does for ALT ``.``. ``genomics_samples``
gets one ``plink`` row per ``.fam`` line (its six fields in ``fields``).

The 2-bit codes go straight to Glow's calls through a 256-entry table (one lookup per byte,
four samples at a time), a batch of variants at once; bed-reader, which decodes to allele
counts and refuses a ``.bed`` whose length is not exact, checks this decoder in the tests. A
``.bed`` cut short lands the variants whose blocks are complete and quarantines each variant
whose block is cut or missing. A sample-major ``.bed`` (PLINK 0.99 and older, mode byte 0; Glow
reads only variant-major) is transposed to the variant-major file PLINK 1.9 would write, and
lands the same rows. A ``.bim`` line that is not six fields with numeric positions quarantines
that variant. A missing ``.bim`` or ``.fam``, a ``.fam`` line that is not six fields, a
non-PLINK ``.bed`` or one of another mode, a ``.bed`` longer than its ``.bim`` and ``.fam``
describe, or a sample-major ``.bed`` cut short quarantine the fileset whole: positions alone tie
a genotype to its sample and variant, so a fileset whose parts disagree cannot be attributed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from python_ingest.genomics import VARIANTS_TABLE
from python_ingest.genomics_genotypes import sample_ids
from python_ingest.genomics_manifest import SAMPLES_SCHEMA, SAMPLES_TABLE
from python_ingest.genomics_schema import BASE_FIELDS
from python_ingest.model import READER_LINEAGE, FileOutcome, Quarantined, record_hash
from python_ingest.source_bytes import read_source

BED_SUFFIX = ".bed"
MAGIC = b"\x6c\x1b"
VARIANT_MAJOR, SAMPLE_MAJOR = 1, 0  # the .bed's third byte
GENOTYPE_FIELDS = (pa.field("sampleId", pa.string()), pa.field("calls", pa.list_(pa.int32())))
GENOTYPES_TYPE = pa.list_(pa.struct(list(GENOTYPE_FIELDS)))
_BASE = {f.name: f for f in BASE_FIELDS}
PLINK_SCHEMA = pa.schema(
    [
        _BASE["contigName"],
        _BASE["names"],
        pa.field("position", pa.float64()),
        _BASE["start"],
        _BASE["end"],
        _BASE["referenceAllele"],
        _BASE["alternateAlleles"],
        pa.field("genotypes", GENOTYPES_TYPE),
        *READER_LINEAGE,
    ]
)
BATCH_GENOTYPES = 1 << 20  # genotypes per Arrow batch: cache-sized, bounded memory
FAM_FIELDS = ("FID", "IID", "father", "mother", "sex", "phenotype")

# Calls of each 2-bit code (the low bits hold the first sample of a byte): 00 hom allele 1
# (the alternate) [1, 1], 01 missing [-1, -1], 10 het [0, 1], 11 hom allele 2 [0, 0].
_CODE_CALLS = np.array([[1, 1], [-1, -1], [0, 1], [0, 0]], dtype=np.int32)
# The 8 calls (4 samples x 2) of every byte value: decoding is one table lookup per byte.
_BYTE_CALLS = _CODE_CALLS[(np.arange(256)[:, None] >> (2 * np.arange(4))) & 3].reshape(256, 8)


class PlinkError(Exception):
    """The fileset cannot be read as a whole; the message says why, for a person."""


@dataclass
class BimVariant:
    line: int  # 1-based line in the .bim
    text: str  # the line as written
    fields: list[str]
    error: str | None = None


def siblings(bed: Path) -> tuple[Path, Path]:
    """The ``.bim`` and ``.fam`` of a ``.bed``: the same prefix (Glow drops the 4-byte suffix)."""
    prefix = bed.name[: -len(BED_SUFFIX)]
    return bed.with_name(prefix + ".bim"), bed.with_name(prefix + ".fam")


def is_plink_bed(path: Path) -> bool:
    """A PLINK ``.bed`` (not a UCSC BED of intervals): it has a sibling ``.bim`` or ``.fam``,
    or starts with the PLINK magic bytes. Panel target regions travel as UCSC ``.bed`` files.
    """
    if not path.name.lower().endswith(BED_SUFFIX):
        return False
    if any(p.is_file() for p in siblings(path)):
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(2) == MAGIC
    except OSError:  # unreadable: not ours to judge at discovery (the job would hash it)
        return False


def _lines(path: Path) -> list[tuple[int, str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_fam(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, text, six fields) per sample; any other line count makes PlinkError."""
    if not path.is_file():
        raise PlinkError(f"its sample file {path.name} is missing, so the genotypes are unnamed")
    out = []
    for number, text in _lines(path):
        fields = text.split()
        if len(fields) != 6:
            raise PlinkError(
                f"line {number} of {path.name} has {len(fields)} fields where a .fam line has 6 "
                "(FID IID father mother sex phenotype), so the samples cannot be attributed"
            )
        out.append((number, text, fields))
    return out


def read_bim(path: Path) -> list[BimVariant]:
    """Every variant line of a ``.bim``, with what is wrong with it (if anything)."""
    if not path.is_file():
        raise PlinkError(f"its variant file {path.name} is missing, so its variants are unknown")
    variants = []
    for number, text in _lines(path):
        variant = BimVariant(number, text, text.split())
        fields = variant.fields
        if len(fields) != 6:
            variant.error = f"the .bim line has {len(fields)} fields where 6 are needed"
        elif not fields[3].lstrip("-").isdigit():
            variant.error = f"base-pair coordinate '{fields[3]}' is not an integer"
        elif fields[3].startswith("-"):
            variant.error = (
                f"base-pair coordinate {fields[3]} is negative (PLINK's mark for a variant to skip)"
            )
        else:
            try:
                float(fields[2])
            except ValueError:
                variant.error = f"genetic position '{fields[2]}' is not a number"
        variants.append(variant)
    return variants


def decode_calls(blocks: np.ndarray, n_samples: int) -> np.ndarray:
    """Diploid calls of ``.bed`` variant blocks (uint8, one row of ceil(N/4) bytes each):
    (variants, 2N) int32, the two calls of each sample side by side."""
    calls = np.take(_BYTE_CALLS, blocks, axis=0).reshape(len(blocks), -1)
    return calls[:, : 2 * n_samples]


def _rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix[rows]``, as a view when the rows are consecutive (the usual case: all landed)."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return matrix[rows[0] : rows[-1] + 1]
    return matrix[rows]


def _samples_table(fam: list[tuple[int, str, list[str]]], ids: list[str], fam_name: str):
    n = len(fam)
    columns: dict[str, list] = {name: [None] * n for name in SAMPLES_SCHEMA.names}
    columns["sample_id"] = ids
    columns["source_kind"] = ["plink"] * n
    columns["sample_column"] = list(range(1, n + 1))
    columns["fields"] = [list(zip(FAM_FIELDS, f, strict=True)) for _, _, f in fam]
    columns["_source_locator"] = [f"{fam_name} line {number}" for number, _, _ in fam]
    columns["_record_hash"] = [record_hash(text) for _, text, _ in fam]
    return pa.Table.from_pydict(columns, schema=SAMPLES_SCHEMA)


def read_plink(bed: Path) -> FileOutcome:
    """Land one PLINK fileset, named by its ``.bed``."""
    bim_path, fam_path = siblings(bed)
    raw = read_source(bed)
    try:
        if raw[:2] != MAGIC:
            raise PlinkError("it is not a PLINK .bed: it does not start with the magic bytes")
        mode = raw[2] if len(raw) >= 3 else None
        if mode not in (VARIANT_MAJOR, SAMPLE_MAJOR):
            shown = "missing" if mode is None else f"0x{mode:02X}"
            raise PlinkError(
                f"its mode byte (the third) is {shown}, neither 1 (variant-major) nor 0 "
                "(sample-major)"
            )
        fam = read_fam(fam_path)
        bim = read_bim(bim_path)
        n, m = len(fam), len(bim)
        if mode == SAMPLE_MAJOR:
            raw = variant_major(raw, n, m)
        width = (n + 3) // 4
        expected = 3 + m * width
        if len(raw) > expected:
            raise PlinkError(
                f"it is {len(raw)} bytes where {m} variants of {n} samples take {expected}: "
                f"{fam_path.name} and {bim_path.name} do not describe it"
            )
    except PlinkError as exc:
        return FileOutcome(quarantined=[Quarantined("file", str(exc))], records_read=1)
    complete = min(m, (len(raw) - 3) // width) if width else m
    blocks = np.frombuffer(raw, dtype=np.uint8, count=complete * width, offset=3)
    blocks = blocks.reshape(complete, width)
    quarantined, landed = [], []
    for index, variant in enumerate(bim):
        fields = variant.fields
        locator = f"bim line {variant.line}"
        if variant.error is None:
            locator += f" {fields[1]} {fields[0]}:{fields[3]}"
        if index >= complete:
            begin = 3 + index * width
            reason = (
                f"its genotype block (bytes {begin}-{begin + width - 1}) is cut short: the .bed "
                f"ends at byte {len(raw)} (truncated)"
            )
            quarantined.append(Quarantined(locator, reason, variant.text))
        elif variant.error is not None:
            quarantined.append(Quarantined(locator, variant.error, variant.text))
        else:
            landed.append((index, locator))
    ids = [f"{f[0]}_{f[1]}" for _, _, f in fam]
    table = _variants_table(bim, landed, blocks, ids)
    return FileOutcome(
        tables={VARIANTS_TABLE: table, SAMPLES_TABLE: _samples_table(fam, ids, fam_path.name)},
        quarantined=quarantined,
        records_read=m,
        records_landed=len(landed),
    )


def variant_major(raw: bytes, n: int, m: int) -> bytes:
    """A sample-major ``.bed`` (PLINK 0.99 and older) rewritten as the variant-major one.

    A sample-major file holds one block per sample, a 2-bit code per variant, in the same code
    and bit order; transposing the codes gives the file PLINK 1.9 would write for the fileset.
    Each of its blocks mixes every variant, so one cut short cannot be attributed in part.
    """
    depth = (m + 3) // 4
    if len(raw) != 3 + n * depth:
        raise PlinkError(
            f"it is a sample-major .bed of {len(raw)} bytes where {n} samples of {m} variants "
            f"take {3 + n * depth}: a sample's block holds every variant, so no variant can "
            "be told whole"
        )
    blocks = np.frombuffer(raw, dtype=np.uint8, offset=3).reshape(n, depth)
    codes = (blocks[:, :, None] >> (2 * np.arange(4, dtype=np.uint8))) & 3  # (n, depth, 4)
    codes = codes.reshape(n, depth * 4)[:, :m].T  # (m, n): a variant per row
    width = (n + 3) // 4
    padded = np.zeros((m, width * 4), dtype=np.uint8)
    padded[:, :n] = codes
    quads = padded.reshape(m, width, 4) << (2 * np.arange(4, dtype=np.uint8))
    return raw[:2] + bytes([VARIANT_MAJOR]) + quads.sum(axis=2, dtype=np.uint8).tobytes()


def _variants_table(
    bim: list[BimVariant],
    landed: list[tuple[int, str]],
    blocks: np.ndarray,
    ids: list[str],
) -> pa.Table:
    """The landed variants, in batches of about ``BATCH_GENOTYPES`` genotypes (int32 offsets)."""
    step = max(1, BATCH_GENOTYPES // max(1, len(ids)))
    names: dict[int, pa.Array] = {}  # the sampleId column of a batch of each length, reused
    batches = []
    for at in range(0, len(landed), step):
        part = landed[at : at + step]
        if len(part) not in names:
            names[len(part)] = sample_ids(ids, len(part))
        batches.append(_batch(bim, part, blocks, names[len(part)], len(ids)))
    return pa.Table.from_batches(batches, schema=PLINK_SCHEMA)


def _batch(
    bim: list[BimVariant],
    landed: list[tuple[int, str]],
    blocks: np.ndarray,
    ids: pa.Array,
    n: int,
) -> pa.RecordBatch:
    rows = np.array([i for i, _ in landed], dtype=np.int64)
    fields = [bim[i].fields for i, _ in landed]
    n_rows = len(landed)
    start = np.array([int(f[3]) for f in fields], dtype=np.int64) - 1
    ref = [f[5] for f in fields]
    hashes = [  # the variant's raw bytes: its .bim line and its .bed block
        hashlib.sha256(bim[i].text.encode("utf-8") + b"\n" + blocks[i].tobytes()).hexdigest()
        for i in rows.tolist()
    ]
    calls = pa.ListArray.from_arrays(
        pa.array(np.arange(n_rows * n + 1, dtype=np.int32) * 2),
        pa.array(decode_calls(_rows(blocks, rows), n).ravel(), pa.int32()),
    )
    struct = pa.StructArray.from_arrays([ids, calls], fields=list(GENOTYPE_FIELDS))
    offsets = pa.array(np.arange(n_rows + 1, dtype=np.int32) * n)
    columns = {
        "contigName": pa.array([f[0] for f in fields], pa.string()),
        "names": pa.array([None if f[1] == "." else [f[1]] for f in fields], pa.list_(pa.string())),
        "position": pa.array([float(f[2]) for f in fields], pa.float64()),
        "start": pa.array(start, pa.int64()),
        "end": pa.array(start + np.array([len(r) for r in ref], dtype=np.int64), pa.int64()),
        "referenceAllele": pa.array(ref, pa.string()),
        "alternateAlleles": pa.array(
            [[] if f[4] in ("0", ".") else [f[4]] for f in fields], pa.list_(pa.string())
        ),
        "genotypes": pa.ListArray.from_arrays(offsets, struct, type=GENOTYPES_TYPE),
        "_source_locator": pa.array([locator for _, locator in landed], pa.string()),
        "_record_hash": pa.array(hashes, pa.string()),
    }
    return pa.RecordBatch.from_pydict(columns, schema=PLINK_SCHEMA)
