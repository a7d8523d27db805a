"""What a modality reader gives the ingestion job, and the lineage every bronze row carries.

A reader turns one source file into Arrow tables (one per bronze table it feeds) plus the records
it had to quarantine. It never writes: the job owns the write order, which is what makes a re-run
or a crash-and-re-run land every record exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa

from python_ingest.ipc_spool import pack, unpack

# Lineage columns, in this order, at the end of every bronze table.
SOURCE_FILE = "_source_file"
SOURCE_LOCATOR = "_source_locator"
BATCH_ID = "_ingest_batch_id"
INGESTED_AT = "_ingested_at"
RECORD_HASH = "_record_hash"
LINEAGE_COLUMNS = (SOURCE_FILE, SOURCE_LOCATOR, BATCH_ID, INGESTED_AT, RECORD_HASH)

# Readers add these two; the job adds the rest.
READER_LINEAGE = pa.schema(
    [pa.field(SOURCE_LOCATOR, pa.string(), nullable=False), pa.field(RECORD_HASH, pa.string())]
)

SMALL_PIECE_BYTES = 256 * 1024  # see OutcomeGroup
MAX_PAYLOAD_CHARS = 4096  # a quarantined payload is kept for diagnosis, bounded in size


@dataclass(frozen=True)
class Quarantined:
    """A record (or a whole file) that could not land, with a reason a person understands."""

    locator: str  # "line 17", "byte 2048", "file", "SOPInstanceUID=...", "Patient/abc"
    reason: str
    payload: str | bytes | None = None

    def payload_text(self) -> str | None:
        if self.payload is None:
            return None
        text = (
            self.payload.decode("utf-8", errors="replace")
            if isinstance(self.payload, bytes)
            else self.payload
        )
        return text if len(text) <= MAX_PAYLOAD_CHARS else text[:MAX_PAYLOAD_CHARS] + " [truncated]"


@dataclass
class FileOutcome:
    """Everything one source file produced.

    ``records_read`` counts the file's records in the reader's unit (a FHIR resource, a VCF data
    line, a DICOM instance, a note, an event); every one of them is either landed in the
    primary table or quarantined, so ``records_read == records_landed + len(quarantined)``.
    """

    tables: dict[str, pa.Table] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)
    records_read: int = 0
    records_landed: int = 0

    def __getstate__(self) -> dict[str, object]:
        """Cross the worker-process boundary as Arrow IPC streams.

        A ``pa.Table`` pickles column by column (about 0.6 ms for a small table, more than
        parsing a whole small file); one IPC stream per table costs tens of microseconds.
        """
        state = dict(self.__dict__)
        state["tables"] = {name: pack(table) for name, table in self.tables.items()}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        streams = state.pop("tables")
        self.__dict__.update(state)
        self.tables = {name: unpack(data) for name, data in streams.items()}

    def check_accounting(self, path: Path) -> None:
        if self.records_read != self.records_landed + len(self.quarantined):
            raise AssertionError(
                f"{path}: read {self.records_read} records but landed {self.records_landed} "
                f"and quarantined {len(self.quarantined)}"
            )


class OutcomeGroup:
    """The (sha256, outcome) of each file of one pool task, sent back to the parent in one piece.

    Per table, the files' rows cross the process boundary as one Arrow IPC stream when they
    share a schema (a file's table is a slice of it on arrival): a task of 256 hourly drops then
    costs one stream, not 256, and the slices share one schema object, which turns the
    parent's per-file schema checks into pointer comparisons.
    """

    def __init__(self, items: list[tuple[str, FileOutcome]]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[tuple[str, FileOutcome]]:
        return iter(self.items)

    def __getstate__(self) -> dict[str, object]:
        outcomes = [o for _, o in self.items]
        names = dict.fromkeys(name for o in outcomes for name in o.tables)
        shared: dict[str, tuple[bytes | str, list[int]]] = {}
        for name in names:
            present = [o.tables[name] for o in outcomes if name in o.tables]
            schema = present[0].schema
            if len(present) > 1 and all(t.schema.equals(schema) for t in present):
                counts = [o.tables[name].num_rows if name in o.tables else -1 for o in outcomes]
                joined = pa.concat_tables(present)
                # Small pieces (hourly drops, one-row notes) become one chunk: cheap to copy,
                # and thousands of chunks cost the parent per chunk. Large ones (a VCF's
                # genotypes) cross as they are: copying them would cost more than it saves.
                if joined.get_total_buffer_size() < SMALL_PIECE_BYTES * len(present):
                    joined = joined.combine_chunks()
                shared[name] = (pack(joined), counts)
        rest = [
            FileOutcome(
                {n: t for n, t in o.tables.items() if n not in shared},
                o.quarantined,
                o.records_read,
                o.records_landed,
            )
            for o in outcomes
        ]
        return {"digests": [d for d, _ in self.items], "outcomes": rest, "shared": shared}

    def __setstate__(self, state: dict[str, Any]) -> None:
        outcomes: list[FileOutcome] = state["outcomes"]
        for name, (stream, counts) in state["shared"].items():
            table = unpack(stream)
            offset = 0
            for outcome, count in zip(outcomes, counts, strict=True):
                if count >= 0:
                    outcome.tables[name] = table.slice(offset, count)
                    offset += count
        self.items = list(zip(state["digests"], outcomes, strict=True))


class Reader(Protocol):
    """One modality's reader. Stateless between files, so files can be parsed in parallel."""

    modality: str
    # Bronze tables it writes; the first is the primary table the accounting refers to.
    tables: tuple[str, ...]

    def discover(self, source: Path) -> list[Path]:
        """The files of this modality under ``source``, sorted (deterministic batches)."""
        ...

    def read(self, path: Path) -> FileOutcome:
        """Parse one file. Bad records are quarantined; only a programming error may raise."""
        ...

    # Optional: ``read_many(paths) -> list[FileOutcome]``, ``read`` of each path built together
    # (many small files share the per-table Arrow calls); the job falls back to ``read``.
    # Optional: ``companions(path) -> list[Path]``, the sibling files that ``path``'s content
    # depends on (PLINK .bim/.fam, a BGEN .sample). The ledger hashes them with the file, so a
    # changed sibling re-lands the fileset.
    # Optional: ``use_landed(values)``, called before ``discover`` by both engines:
    # ``values(table, column)`` lists the distinct values of a column of a bronze table as
    # earlier runs landed it (none before the table exists), for checks that span runs (EHR:
    # an incremental export references Patients landed before).


def record_hash(payload: bytes | str | dict | list) -> str:
    """sha256 of a record's bytes (or of its canonical JSON when it has no raw bytes)."""
    if isinstance(payload, dict | list):
        payload = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)
    elif isinstance(payload, str):
        payload = payload.encode("utf-8")
    return hashlib.sha256(payload).hexdigest()
