"""One read per source file: the bytes the ledger hashes are the bytes the reader parses.

A worker that hashes a new file for the ledger (``job._read_files``) keeps the bytes it read
until the reader asks for them with ``read_source``. For the many-small-files modalities
(hourly wearables drops, one note per file, one DICOM instance per file) the second
open-and-read was a third of the I/O time. It also closes a gap: a file rewritten between the
hash and the parse would otherwise land content that its ledger sha256 does not describe.

The store is per process and lives for one pool task: ``holding`` empties it on the way out,
whether or not the reader took what it held.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Larger files are hashed in blocks and read again by their reader: holding a whole
# multi-gigabyte VCF in memory twice over is not worth one saved read.
MAX_HELD_BYTES = 64 << 20

_held: dict[str, bytes] = {}


def read_source(path: Path | str) -> bytes:
    """The file's bytes: those hashed for the ledger if a worker holds them, else a read."""
    data = _held.get(os.fspath(path))
    return data if data is not None else Path(path).read_bytes()


def hash_and_hold(path: Path, size: int) -> str | None:
    """sha256 of a file small enough to hold, whose bytes stay for ``read_source``; else None."""
    if size > MAX_HELD_BYTES:
        return None
    data = path.read_bytes()
    _held[os.fspath(path)] = data
    return hashlib.sha256(data).hexdigest()


@contextmanager
def holding() -> Iterator[None]:
    """Scope of one pool task's held bytes: whatever no reader took is dropped at the end."""
    try:
        yield
    finally:
        _held.clear()
