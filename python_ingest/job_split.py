"""One large line-oriented file parsed by several workers, as byte ranges of whole lines.

A FHIR bulk export is a handful of NDJSON files, one per resource type, and the Observation
file often holds most of the records: parsed as one pool task it keeps one core busy while the
others wait. A reader that can parse part of a file (``splittable(path)`` and
``read_range(path, start, stop)``) gets it cut into ranges; each range is every line that
*starts* in ``[start, stop)``, so the ranges cover each line exactly once whatever the cut
points, and the merged outcome is the one ``read`` gives: the same rows in the same order,
the same quarantined records with the same line numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from python_ingest.ledger import SourceFile, file_digest
from python_ingest.model import FileOutcome, Reader

# Files at least this big are cut, into ranges of at least PART_BYTES (about two per worker).
SPLIT_BYTES = 16 << 20
PART_BYTES = 4 << 20
_COUNT_BLOCK = 8 << 20


def split_ranges(reader: Reader, f: SourceFile, workers: int) -> list[tuple[int, int]] | None:
    """The byte ranges to parse ``f`` in, or None when it is read whole."""
    splittable = getattr(reader, "splittable", None)
    if workers < 2 or f.size_bytes < SPLIT_BYTES or splittable is None:
        return None
    if not splittable(f.path):
        return None
    parts = min(2 * workers, max(2, f.size_bytes // PART_BYTES))
    step = math.ceil(f.size_bytes / parts)
    return [(a, min(a + step, f.size_bytes)) for a in range(0, f.size_bytes, step)]


def line_range(path: Path, start: int, stop: int) -> tuple[int, bytes]:
    """(1-based number of the first line, the bytes of the lines starting in [start, stop)).

    The newlines before ``start`` are counted in blocks, so line numbers (the locators of
    quarantined records) are those of the whole file without holding all of it.
    """
    with path.open("rb") as handle:
        before = 0  # newlines in [0, begin)
        begin = start
        if start > 0:
            remaining = start - 1
            while remaining > 0:
                block = handle.read(min(_COUNT_BLOCK, remaining))
                if not block:
                    break
                before += block.count(b"\n")
                remaining -= len(block)
            if handle.read(1) == b"\n":
                before += 1
            else:  # ``start`` is inside a line that belongs to the previous range
                tail = handle.readline()
                begin = start + len(tail)
                before += tail.endswith(b"\n")
        if begin >= stop:
            return before + 1, b""
        body = handle.read(stop - begin)
        if body and not body.endswith(b"\n"):
            body += handle.readline()  # finish the last line started before ``stop``
    return before + 1, body


def read_range(
    reader: Reader, f: SourceFile, start: int, stop: int, hash_it: bool
) -> tuple[str | None, FileOutcome | None]:
    """One pool task: a range's outcome (None if it failed), and the file's sha256 if asked.

    A failed range is not quarantined here: the parent reads the whole file again, so a file
    that cannot be parsed fails exactly as ``read`` fails on it.
    """
    digest = file_digest(reader, f.path, f.size_bytes) if hash_it and f.sha256 is None else None
    try:
        return digest, reader.read_range(f.path, start, stop)  # type: ignore[attr-defined]
    except Exception:  # the whole-file read in the parent says what went wrong
        return digest, None


def merge(parts: Sequence[FileOutcome]) -> FileOutcome:
    """The outcome of a file from those of its ranges, in file order."""
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(part.tables))
    tables = {
        name: pa.concat_tables(
            [p.tables[name] for p in parts if name in p.tables], promote_options="permissive"
        )
        for name in names
    }
    return FileOutcome(
        tables=tables,
        quarantined=[q for p in parts for q in p.quarantined],
        records_read=sum(p.records_read for p in parts),
        records_landed=sum(p.records_landed for p in parts),
    )


def merged_outcome(
    f: SourceFile, parts: Sequence[tuple[str | None, FileOutcome | None]]
) -> tuple[str | None, FileOutcome] | None:
    """(sha256 if a range computed it, the file's outcome) from its ranges' results, or None
    when the file must be read whole instead: a range failed, the counts do not add up, or
    its size changed while they ran (the ranges and the hash are separate reads of a file
    still being written, so hash and content are then taken again from one read)."""
    outcomes = [o for _, o in parts if o is not None]
    try:
        unchanged = f.path.stat().st_size == f.size_bytes
    except OSError:  # gone: the whole-file read quarantines it with the reason
        unchanged = False
    if len(outcomes) < len(parts) or not unchanged:
        return None
    outcome = merge(outcomes)
    try:
        outcome.check_accounting(f.path)
    except AssertionError:
        return None
    return parts[0][0], outcome
