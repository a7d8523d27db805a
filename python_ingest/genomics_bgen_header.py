"""The BGEN header and sample identifiers: the header block, the sample block, ``.sample`` files.

The first four bytes give the offset of the first variant block (from byte 4); the header block
gives its own length, the numbers of variants M and samples N, the magic ``bgen`` (four zero
bytes in early files) and, in its last four bytes, the flags: compression (0 none, 1 zlib,
2 zstd) in bits 0-1, the layout (1 for v1.1, 2 for v1.2/v1.3) in bits 2-5, and in bit 31 whether
a sample identifier block follows (N identifiers, each a uint16 length and its bytes).
Without that block, an Oxford ``.sample`` file names the samples (see ``read_sample_file``).
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from python_ingest.genomics_bgen_probs import BgenError
from python_ingest.genomics_manifest import SAMPLES_SCHEMA
from python_ingest.model import record_hash

BGEN_SUFFIX = ".bgen"


@dataclass
class BgenHeader:
    first_variant: int  # byte offset of the first variant block
    n_variants: int
    n_samples: int
    compression: int  # 0 none, 1 zlib, 2 zstd
    layout: int  # 1 (v1.1) or 2 (v1.2, v1.3)
    sample_ids: list[str] | None


def u16(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at : at + 2], "little")


def u32(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at : at + 4], "little")


def parse_header(raw: bytes) -> BgenHeader:
    """The header block (and sample block) of a BGEN file; BgenError says what is wrong."""
    if len(raw) < 24:
        raise BgenError(f"the file is {len(raw)} bytes, too short for a BGEN header")
    offset, length, n_variants, n_samples = struct.unpack_from("<4I", raw)
    magic = raw[16:20]
    if magic not in (b"bgen", b"\0\0\0\0"):
        raise BgenError(f"it is not a BGEN file: its magic number is {magic!r}, not b'bgen'")
    if length < 20 or offset < length or 4 + length > len(raw):
        raise BgenError(
            f"its header block length ({length}) and first variant offset ({offset}) "
            f"do not fit a {len(raw)}-byte file"
        )
    flags = u32(raw, length)
    compression, layout = flags & 3, (flags >> 2) & 15
    if layout not in (1, 2) or compression == 3 or (layout == 1 and compression == 2):
        raise BgenError(f"its flags declare layout {layout} with compression {compression}")
    if compression == 2 and importlib.util.find_spec("zstandard") is None:
        raise BgenError(
            "its genotype blocks are zstd-compressed and the zstandard package is not installed"
        )
    header = BgenHeader(offset + 4, n_variants, n_samples, compression, layout, None)
    if header.first_variant > len(raw):
        raise BgenError(f"its first variant starts at byte {offset + 4}, past the end of file")
    if flags >> 31:
        header.sample_ids = _sample_block(raw, 4 + length, header)
    return header


def _sample_block(raw: bytes, at: int, header: BgenHeader) -> list[str]:
    block_length, count = u32(raw, at), u32(raw, at + 4)
    if at + block_length > header.first_variant or at + 8 > header.first_variant:
        raise BgenError("its sample identifier block runs into the variant data")
    if count != header.n_samples:
        raise BgenError(
            f"its sample block names {count} samples where the header has {header.n_samples}"
        )
    ids, cursor, end = [], at + 8, at + block_length
    for i in range(count):
        size = u16(raw, cursor)
        if cursor + 2 + size > end:
            raise BgenError(f"its sample block is cut short at sample {i + 1}")
        try:
            ids.append(raw[cursor + 2 : cursor + 2 + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise BgenError(f"sample identifier {i + 1} is not UTF-8 text") from None
        cursor += 2 + size
    return ids


def sibling_sample_file(path: Path) -> Path | None:
    """``x.y.sample`` for ``x.y.bgen``, else ``x.sample``: the nearest named like it."""
    parts = path.name[: -len(BGEN_SUFFIX)].split(".")
    for keep in range(len(parts), 0, -1):
        candidate = path.with_name(".".join(parts[:keep]) + ".sample")
        if candidate.is_file():
            return candidate
    return None


@dataclass
class SampleFile:
    """An Oxford ``.sample`` file: the sample ids and, per sample, its row as written."""

    path: Path
    ids: list[str]
    rows: list[list[tuple[str, str]]]  # (column name, value) per sample
    lines: list[tuple[int, str]]  # (1-based line number, text) per sample


def read_sample_file(path: Path, n_samples: int) -> SampleFile:
    """Sample ids (column ID_2, else the first column) and every row of an Oxford .sample file.

    Line 1 names the columns, line 2 gives their types, then one line per sample in the BGEN's
    order. A short row or a count that differs from the BGEN's would attribute genotypes to the
    wrong people, so either makes the whole file unusable.
    """
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    if len(lines) < 2 or not lines[0].split():
        raise BgenError(f"the sample file {path.name} lacks its two header lines")
    names = lines[0].split()
    column = names.index("ID_2") if "ID_2" in names else 0
    out = SampleFile(path, [], [], [])
    for number, line in enumerate(lines[2:], start=3):
        values = line.split()
        if not values:
            continue
        if len(values) != len(names):
            raise BgenError(
                f"line {number} of the sample file {path.name} has {len(values)} fields where "
                f"its header names {len(names)}"
            )
        out.ids.append(values[column])
        out.rows.append(list(zip(names, values, strict=True)))
        out.lines.append((number, line))
    if len(out.ids) != n_samples:
        raise BgenError(
            f"the sample file {path.name} lists {len(out.ids)} samples where the BGEN holds "
            f"{n_samples}, so its genotypes cannot be attributed"
        )
    return out


def samples_table(ids: list[str] | None, sample_file: SampleFile | None) -> pa.Table | None:
    """One ``genomics_samples`` row per named sample (``source_kind`` ``bgen``)."""
    if ids is None:
        return None
    n = len(ids)
    columns: dict[str, list] = {name: [None] * n for name in SAMPLES_SCHEMA.names}
    columns["sample_id"] = ids
    columns["source_kind"] = ["bgen"] * n
    columns["sample_column"] = list(range(1, n + 1))
    if sample_file is not None:
        name = sample_file.path.name
        columns["fields"] = sample_file.rows
        columns["_source_locator"] = [f"{name} line {number}" for number, _ in sample_file.lines]
        columns["_record_hash"] = [record_hash(text) for _, text in sample_file.lines]
    else:
        columns["_source_locator"] = [f"sample {s}" for s in ids]
        columns["_record_hash"] = [record_hash(s) for s in ids]
    return pa.Table.from_pydict(columns, schema=SAMPLES_SCHEMA)
