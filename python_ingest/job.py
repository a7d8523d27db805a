"""Run one modality's reader over a folder and land the result in bronze, exactly once.

Per chunk of files: parse (both cores), then commit in a fixed order: ``started`` log rows,
data tables, quarantine, ``landed`` log rows. See ``python_ingest.ledger`` for why that order
makes a killed run harmless.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mmlake.delta import delete_where, is_delta_table, sql_string, write_delta
from python_ingest.ledger import FileState, Ledger, SourceFile
from python_ingest.model import (
    BATCH_ID,
    INGESTED_AT,
    LINEAGE_COLUMNS,
    SOURCE_FILE,
    FileOutcome,
    Quarantined,
    Reader,
)

CHUNK_FILES = 2000
CHUNK_BYTES = 512 * 1024 * 1024
# Files go to the worker pool in groups, so many tiny files (hourly wearables, notes) cost one
# task, not one each; a group closes at this many files or bytes.
GROUP_FILES = 256
GROUP_BYTES = 4 * 1024 * 1024
# Crash drill: set to "started" or "data" and the job stops dead after that commit step, so a
# test (or an operator rehearsing recovery) can kill it at a precise point and re-run.
PAUSE_ENV = "MMLAKE_INGEST_PAUSE_AFTER"


def _pause_point(step: str) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        print(f"ingest paused after {step}", file=sys.stderr, flush=True)
        time.sleep(3600)


@dataclass
class ModalitySummary:
    modality: str
    files_seen: int = 0
    files_skipped: int = 0
    files_landed: int = 0
    records_read: int = 0
    records_landed: int = 0
    records_quarantined: int = 0


def sha256_file(path: Path, size: int | None = None) -> str:
    if size is not None and size <= 1 << 20:  # small file: one read, no loop
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunks(files: Sequence[SourceFile]) -> Iterator[list[SourceFile]]:
    chunk: list[SourceFile] = []
    size = 0
    for f in files:
        if chunk and (len(chunk) >= CHUNK_FILES or size + f.size_bytes > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(f)
        size += f.size_bytes
    if chunk:
        yield chunk


def _groups(files: Sequence[SourceFile], workers: int) -> list[list[Path]]:
    """The chunk's paths in order, cut into pool tasks of at most GROUP_FILES / GROUP_BYTES.

    A chunk of few files still spreads over the workers (about four tasks per worker).
    """
    most = max(1, min(GROUP_FILES, len(files) // (4 * workers)))
    groups: list[list[Path]] = []
    group: list[Path] = []
    size = 0
    for f in files:
        if group and (len(group) >= most or size + f.size_bytes > GROUP_BYTES):
            groups.append(group)
            group, size = [], 0
        group.append(f.path)
        size += f.size_bytes
    if group:
        groups.append(group)
    return groups


def _safe_read(reader: Reader, path: Path) -> FileOutcome:
    """A reader bug or an unreadable file quarantines the file; it never stops the batch."""
    try:
        outcome = reader.read(path)
        outcome.check_accounting(path)
        return outcome
    except Exception as exc:  # the whole file is unusable: one quarantined record
        reason = f"the file could not be read as {reader.modality}: {type(exc).__name__}: {exc}"
        return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)


def _safe_read_group(reader: Reader, paths: list[Path]) -> list[FileOutcome]:
    """One pool task: ``_safe_read`` each path in turn (a bad file still quarantines alone)."""
    return [_safe_read(reader, path) for path in paths]


def _with_lineage(table: pa.Table, source: str, batch_id: str, at: dt.datetime) -> pa.Table:
    n = table.num_rows
    table = table.append_column(SOURCE_FILE, pa.array([source] * n, pa.string()))
    table = table.append_column(BATCH_ID, pa.array([batch_id] * n, pa.string()))
    table = table.append_column(INGESTED_AT, pa.array([at] * n, pa.timestamp("us", tz="UTC")))
    content = [c for c in table.column_names if c not in LINEAGE_COLUMNS]
    return table.select([*content, *LINEAGE_COLUMNS])


def _with_lineage_all(
    parts: list[tuple[str, pa.Table]], batch_id: str, at: dt.datetime
) -> pa.Table:
    """``_with_lineage`` of each (source, table) part, concatenated, built once per chunk.

    Same result as concatenating per-file ``_with_lineage`` tables, column order included
    (a column first seen in a later file comes after the lineage columns, as it did then).
    """
    order: dict[str, None] = {}
    for _, table in parts:
        for name in table.column_names:
            if name not in LINEAGE_COLUMNS:
                order.setdefault(name)
        for name in LINEAGE_COLUMNS:
            order.setdefault(name)
    tables = [table for _, table in parts]
    data = pa.concat_tables(tables, promote_options="permissive")
    n = data.num_rows
    counts = np.fromiter((t.num_rows for t in tables), dtype=np.int64, count=len(tables))
    indices = pa.array(np.repeat(np.arange(len(tables), dtype=np.int32), counts))
    sources = pa.array([source for source, _ in parts], pa.string())
    lineage = {
        SOURCE_FILE: pa.DictionaryArray.from_arrays(indices, sources).cast(pa.string()),
        BATCH_ID: pa.repeat(pa.scalar(batch_id, pa.string()), n),
        INGESTED_AT: pa.repeat(pa.scalar(at, pa.timestamp("us", tz="UTC")), n),
    }
    for name, column in lineage.items():
        data = data.append_column(name, column)
    return data.select(list(order))


def _fits(existing: pa.DataType, incoming: pa.DataType) -> bool:
    """Whether values of ``incoming`` type can be written to a column of ``existing`` type.

    Structs may gain fields (schema evolution, e.g. a VCF with more FORMAT keys) and integers
    or floats may widen; anything else must match exactly.
    """
    if existing == incoming or pa.types.is_null(existing) or pa.types.is_null(incoming):
        return True
    if pa.types.is_struct(existing) and pa.types.is_struct(incoming):
        for field in incoming:
            index = existing.get_field_index(field.name)
            if index >= 0 and not _fits(existing.field(index).type, field.type):
                return False
        return True
    lists = (pa.types.is_list, pa.types.is_large_list)
    if any(f(existing) for f in lists) and any(f(incoming) for f in lists):
        return _fits(existing.value_type, incoming.value_type)
    for family in (pa.types.is_signed_integer, pa.types.is_floating):
        if family(existing) and family(incoming):
            return incoming.bit_width <= existing.bit_width
    return False


def _type_conflict(accepted: pa.Schema | None, incoming: pa.Schema) -> str | None:
    """Why ``incoming`` cannot join a table of schema ``accepted`` (None if it can).

    Delta keeps a column's type once written (delta-rs would even truncate a double into an int
    column), so a changed type is a conflict, not a promotion.
    """
    if accepted is None:
        return None
    for field in incoming:
        index = accepted.get_field_index(field.name)
        if index >= 0 and not _fits(accepted.field(index).type, field.type):
            existing = accepted.field(index).type
            return f"column {field.name} is {field.type} here but {existing} in the table"
    return None


def _table_schema(path: Path) -> pa.Schema | None:
    """The committed schema of a Delta table (log metadata only; no data is read)."""
    if not is_delta_table(path):
        return None
    from deltalake import DeltaTable

    return pa.schema(DeltaTable(str(path)).schema().to_arrow())


def _land(path: Path, parts: list[pa.Table], predicate: str | None) -> None:
    """Append, or replace the chunk's files' rows when some may already be there."""
    if parts:
        data = pa.concat_tables(parts, promote_options="permissive")
        mode = "overwrite" if predicate and is_delta_table(path) else "append"
        write_delta(path, data, mode=mode, predicate=predicate if mode == "overwrite" else None)
    elif predicate:
        delete_where(path, predicate)


def split_pending(
    reader: Reader, source: Path, state: dict[str, FileState]
) -> tuple[list[SourceFile], int, set[str]]:
    """(files to land, files skipped as landed with the same sha256, keys seen before).

    Shared by both engines, so "already landed" means the same thing everywhere.
    """
    todo, skipped = [], 0
    # Resolve the root once; resolving each of tens of thousands of files costs seconds.
    for path in reader.discover(source.resolve()):
        absolute = path if path.is_absolute() else path.absolute()
        size = absolute.stat().st_size
        digest = sha256_file(absolute, size)
        companions = getattr(reader, "companions", None)
        extra = [c for c in companions(absolute) if c.is_file()] if companions else []
        if extra:
            # A fileset (PLINK .bed + .bim + .fam, BGEN + .sample) changes when any part does.
            parts = [digest, *(f"{c.name}:{sha256_file(c, c.stat().st_size)}" for c in extra)]
            digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        f = SourceFile(absolute, size, digest)
        seen = state.get(f.key)
        if seen is not None and seen.status == "landed" and seen.sha256 == f.sha256:
            skipped += 1
        else:
            todo.append(f)
    return todo, skipped, set(state)


class IngestJob:
    """Lands one modality from ``source`` into ``<lakehouse>/bronze``."""

    def __init__(self, reader: Reader, lakehouse: Path, workers: int | None = None) -> None:
        self.reader = reader
        self.bronze = lakehouse / "bronze"
        self.ledger = Ledger(self.bronze)
        self.workers = workers or min(2, os.cpu_count() or 1)

    def pending(self, source: Path) -> tuple[list[SourceFile], int, set[str]]:
        """(files to land, files skipped as already landed, keys seen before)."""
        return split_pending(self.reader, source, self.ledger.state(self.reader.modality))

    def run(
        self,
        source: Path,
        on_file: Callable[[int], None] | None = None,
        pending: tuple[list[SourceFile], int, set[str]] | None = None,
    ) -> ModalitySummary:
        """Land what is pending under ``source`` (``pending`` if the caller already listed it)."""
        summary = ModalitySummary(self.reader.modality)
        todo, summary.files_skipped, seen = pending or self.pending(source)
        summary.files_seen = len(todo) + summary.files_skipped
        batch_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
        pool = ProcessPoolExecutor(self.workers) if self.workers > 1 and len(todo) > 1 else None
        try:
            # The pool parses the next chunk while this process commits the current one.
            chunks = _chunks(todo)
            chunk = next(chunks, None)
            parsing = self._parse(pool, chunk) if chunk is not None else None
            while chunk is not None and parsing is not None:
                outcomes = parsing()
                upcoming = next(chunks, None)
                parsing = self._parse(pool, upcoming) if upcoming is not None else None
                self._commit(chunk, outcomes, batch_id, seen, summary)
                if on_file is not None:
                    on_file(len(chunk))
                chunk = upcoming
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return summary

    def _parse(
        self, pool: ProcessPoolExecutor | None, chunk: list[SourceFile]
    ) -> Callable[[], list[FileOutcome]]:
        """Start parsing ``chunk`` (in the pool, if any); the callable returns its outcomes."""
        if pool is None:
            return lambda: [_safe_read(self.reader, f.path) for f in chunk]
        groups = _groups(chunk, self.workers)
        results = pool.map(_safe_read_group, [self.reader] * len(groups), groups)
        return lambda: [outcome for group in results for outcome in group]

    def _reject_type_conflicts(self, outcomes: list[FileOutcome]) -> list[FileOutcome]:
        """Quarantine, as a whole, any file whose columns clash with the table's types.

        One file declaring a field differently (VCF headers do) must not stop the batch, and
        must not be silently coerced either: it is set aside with the column named.
        """
        accepted = {table: _table_schema(self.bronze / table) for table in self.reader.tables}
        # Per table, incoming schemas already checked and unified into accepted[table] without
        # changing it: the same schema again would pass and change nothing, so skip the work.
        absorbed: dict[str, list[pa.Schema]] = {}
        checked = []
        for outcome in outcomes:
            conflict = None
            todo = [
                (table, data)
                for table, data in outcome.tables.items()
                if not any(data.schema == known for known in absorbed.get(table, ()))
            ]
            for table, data in todo:
                conflict = _type_conflict(accepted.get(table), data.schema)
                if conflict:
                    conflict = f"{conflict} bronze.{table}; the file cannot land until they agree"
                    break
            if conflict:
                checked.append(
                    FileOutcome(quarantined=[Quarantined("file", conflict)], records_read=1)
                )
                continue
            for table, data in todo:
                current = accepted.get(table)
                # The check above passed; if Arrow cannot unify, keep the stricter schema.
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
                    accepted[table] = (
                        data.schema
                        if current is None
                        else pa.unify_schemas([current, data.schema], promote_options="permissive")
                    )
                if current is not None and accepted[table] == current:
                    absorbed.setdefault(table, []).append(data.schema)
                else:
                    absorbed[table] = []
            checked.append(outcome)
        return checked

    def _commit(
        self,
        chunk: list[SourceFile],
        outcomes: list[FileOutcome],
        batch_id: str,
        seen: set[str],
        summary: ModalitySummary,
    ) -> None:
        modality = self.reader.modality
        outcomes = self._reject_type_conflicts(outcomes)
        started = dt.datetime.now(dt.UTC)
        self.ledger.mark_started(modality, chunk, batch_id)
        _pause_point("started")
        replaced = [f.key for f in chunk if f.key in seen]
        predicate = None
        if replaced:
            keys = ", ".join(sql_string(f.key) for f in chunk)
            predicate = f"{SOURCE_FILE} IN ({keys})"
        for table in self.reader.tables:
            parts = [
                (f.key, o.tables[table])
                for f, o in zip(chunk, outcomes, strict=True)
                if table in o.tables and o.tables[table].num_rows
            ]
            data = [_with_lineage_all(parts, batch_id, started)] if parts else []
            _land(self.bronze / table, data, predicate)
        bad = [(f, q) for f, o in zip(chunk, outcomes, strict=True) for q in o.quarantined]
        quarantine = [self.ledger.quarantine_table(modality, bad, batch_id, started)] if bad else []
        _land(self.ledger.quarantine_path, quarantine, predicate)
        _pause_point("data")
        self.ledger.mark_landed(
            modality,
            [
                (f, o.records_read, o.records_landed, len(o.quarantined))
                for f, o in zip(chunk, outcomes, strict=True)
            ],
            batch_id,
            started,
        )
        summary.files_landed += len(chunk)
        summary.records_read += sum(o.records_read for o in outcomes)
        summary.records_landed += sum(o.records_landed for o in outcomes)
        summary.records_quarantined += sum(len(o.quarantined) for o in outcomes)
