"""The ingestion ledger: ``_ingest_log`` (one row per file and batch) and ``_quarantine``.

The log is the exactly-once mechanism and the streaming checkpoint at once. A file is written
in three steps, each an atomic Delta commit: a ``started`` log row, the data (and quarantine)
rows, a ``landed`` log row. A file whose latest status is ``landed`` with the same sha256 is
skipped; a file that was ``started`` but never ``landed`` (a killed run) or that changed is
re-landed with a replaceWhere on ``_source_file``, which removes whatever a crashed attempt
left. A file never seen has no rows anywhere and is simply appended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mmlake.delta import is_delta_table, write_delta
from mmlake.duckdb_ext import connect
from python_ingest.model import Quarantined, Reader
from python_ingest.source_bytes import hash_and_hold

INGEST_LOG = "_ingest_log"
QUARANTINE = "_quarantine"

LOG_SCHEMA = pa.schema(
    [
        pa.field("modality", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # started | landed
        pa.field("records_read", pa.int64()),
        pa.field("records_landed", pa.int64()),
        pa.field("records_quarantined", pa.int64()),
        pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("finished_at", pa.timestamp("us", tz="UTC")),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("modality", pa.string(), nullable=False),
        pa.field("_source_file", pa.string(), nullable=False),
        pa.field("_source_locator", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("payload", pa.string()),
        pa.field("_ingest_batch_id", pa.string(), nullable=False),
        pa.field("_ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    size_bytes: int
    # None until hashed: a file the ledger has never seen is hashed by the worker that parses
    # it (one read of cold data instead of two, and on both cores); it is set before any commit.
    sha256: str | None

    @property
    def key(self) -> str:
        """How the file is named in every table: its absolute path."""
        return str(self.path)


@dataclass(frozen=True)
class FileState:
    sha256: str
    status: str


def sha256_file(path: Path, size: int | None = None) -> str:
    if size is not None and size <= 1 << 20:  # small file: one read, no loop
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(reader: Reader, path: Path, size: int, *, hold: bool = False) -> str:
    """The ledger's sha256 of a source file: the file's, or its fileset's when it has siblings.

    One function for the parent and the workers of both engines, so the same file always gets
    the same digest, wherever it was hashed. ``hold`` keeps the bytes read for the reader that
    parses the file next (``source_bytes``), inside a ``holding()`` scope.
    """
    digest = (hash_and_hold(path, size) if hold else None) or sha256_file(path, size)
    companions = getattr(reader, "companions", None)
    extra = [c for c in companions(path) if c.is_file()] if companions else []
    if not extra:
        return digest
    # A fileset (PLINK .bed + .bim + .fam, BGEN + .sample) changes when any part does.
    parts = [digest, *(f"{c.name}:{sha256_file(c, c.stat().st_size)}" for c in extra)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class Ledger:
    """Reads and appends the ledger tables of one lakehouse's bronze layer."""

    def __init__(self, bronze: Path) -> None:
        self.bronze = bronze
        self.log_path = bronze / INGEST_LOG
        self.quarantine_path = bronze / QUARANTINE

    def state(self, modality: str) -> dict[str, FileState]:
        """Latest status and hash of every file this modality has seen (read via DuckDB)."""
        if not is_delta_table(self.log_path):
            return {}
        query = """
            select path, sha256, status
            from delta_scan(?)
            where modality = ?
            qualify row_number() over (
                partition by path
                order by coalesce(finished_at, started_at) desc, status = 'landed' desc
            ) = 1
        """
        with connect() as conn:
            rows = conn.execute(query, [str(self.log_path), modality]).fetchall()
        return {path: FileState(sha, status) for path, sha, status in rows}

    def landed_values(self, table: str, column: str) -> list[str]:
        """The distinct values of ``column`` in bronze ``table`` (none before it exists): what
        a reader's checks need from earlier runs (``Reader.use_landed``)."""
        path = self.bronze / table
        if not is_delta_table(path):
            return []
        query = f'select distinct "{column}" from delta_scan(?) where "{column}" is not null'
        with connect() as conn:
            return [row[0] for row in conn.execute(query, [str(path)]).fetchall()]

    def mark_started(self, modality: str, files: list[SourceFile], batch_id: str) -> None:
        now = _now()
        rows = [
            {
                "modality": modality,
                "path": f.key,
                "size_bytes": f.size_bytes,
                "sha256": f.sha256,
                "batch_id": batch_id,
                "status": "started",
                "started_at": now,
            }
            for f in files
        ]
        write_delta(self.log_path, pa.Table.from_pylist(rows, schema=LOG_SCHEMA))

    def mark_landed(
        self,
        modality: str,
        files: list[tuple[SourceFile, int, int, int]],
        batch_id: str,
        started_at: dt.datetime,
    ) -> None:
        """Append ``landed`` rows: (file, records read, landed, quarantined) per file."""
        now = _now()
        rows = [
            {
                "modality": modality,
                "path": f.key,
                "size_bytes": f.size_bytes,
                "sha256": f.sha256,
                "batch_id": batch_id,
                "status": "landed",
                "records_read": read,
                "records_landed": landed,
                "records_quarantined": quarantined,
                "started_at": started_at,
                "finished_at": now,
            }
            for f, read, landed, quarantined in files
        ]
        write_delta(self.log_path, pa.Table.from_pylist(rows, schema=LOG_SCHEMA))

    def quarantine_table(
        self,
        modality: str,
        items: list[tuple[SourceFile, Quarantined]],
        batch_id: str,
        ingested_at: dt.datetime,
    ) -> pa.Table:
        rows = [
            {
                "modality": modality,
                "_source_file": f.key,
                "_source_locator": q.locator,
                "reason": q.reason,
                "payload": q.payload_text(),
                "_ingest_batch_id": batch_id,
                "_ingested_at": ingested_at,
            }
            for f, q in items
        ]
        return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
