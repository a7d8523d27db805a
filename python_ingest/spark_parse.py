"""Executor side of the ``spark`` engine: parse files with the reader, stage, stream back.

Spark ships these functions (and the reader object, which is picklable by contract) to its Python
workers. ``parse_files`` runs ``reader.read(path)`` exactly as the local engine's process pool
does (through the same ``_safe_read``), writes each table of each file, lineage added, to an
Arrow IPC file in the chunk's staging folder, and returns a small ``Parsed`` to the driver. Once
the driver has decided the schema of each table, ``stream_staged`` (a ``mapInArrow`` function)
reads the staged files back as record batches conformed to that schema, which Spark's writer
consumes: the rows go from reader to bronze without passing through the driver.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from python_ingest.job import _safe_read
from python_ingest.job_schema import record_locators
from python_ingest.job_tables import with_lineage
from python_ingest.model import FileOutcome, Quarantined, Reader

STAGED_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Staged:
    """Where one file's rows of one table are: a run of record batches in a staged IPC file."""

    path: str
    first: int  # index of its first record batch in the file
    count: int  # number of record batches
    nbytes: int


@dataclass
class Parsed:
    """What an executor tells the driver about one parsed file (its rows stay staged)."""

    records_read: int
    records_landed: int
    quarantined: list[Quarantined]
    schemas: dict[str, pa.Schema]  # the reader's tables, before lineage (type-conflict check)
    staged: dict[str, Staged] = field(default_factory=dict)
    # Each landed record's locator, for quarantining them one by one if the file's columns
    # clash with the table's (``job_schema.record_locators``; None: not told apart).
    locators: list[str] | None = None


class Stager:
    """Appends tables to staged Arrow IPC files: one per table and schema, per Spark task.

    Thousands of small files (a landing folder of wearables drops) would otherwise mean
    thousands of staged files to create and reopen; consecutive files with the same schema
    share one, each keeping its own run of batches so any file can still be left out.
    """

    def __init__(self, staging: str) -> None:
        self.staging = staging
        self.prefix = uuid.uuid4().hex[:12]
        self.open: dict[str, tuple[str, pa.Schema, pa.OSFile, pa.ipc.RecordBatchFileWriter]] = {}
        self.batches: dict[str, int] = {}

    def add(self, table: str, rows: pa.Table) -> Staged:
        current = self.open.get(table)
        if current is None or not current[1].equals(rows.schema):
            if current is not None:
                self._close(table)
            path = f"{self.staging}/{self.prefix}-{len(self.batches)}.{table}.arrow"
            sink = pa.OSFile(path, "wb")
            current = (path, rows.schema, sink, pa.ipc.new_file(sink, rows.schema))
            self.open[table] = current
            self.batches[path] = 0
        path, _, _, writer = current
        batches = rows.to_batches(max_chunksize=STAGED_BATCH_ROWS)
        for batch in batches:
            writer.write_batch(batch)
        first = self.batches[path]
        self.batches[path] += len(batches)
        return Staged(path, first, len(batches), rows.nbytes)

    def _close(self, table: str) -> None:
        _, _, sink, writer = self.open.pop(table)
        writer.close()
        sink.close()

    def close(self) -> None:
        for table in list(self.open):
            self._close(table)


def stage(outcome: FileOutcome, key: str, stager: Stager, batch_id: str, at: dt.datetime) -> Parsed:
    """Stage ``outcome``'s non-empty tables with lineage; keep only bounded payloads."""
    parsed = Parsed(
        outcome.records_read,
        outcome.records_landed,
        [Quarantined(q.locator, q.reason, q.payload_text()) for q in outcome.quarantined],
        {table: data.schema for table, data in outcome.tables.items()},
        locators=record_locators(outcome.tables, outcome.records_landed),
    )
    for table, data in outcome.tables.items():
        if data.num_rows:
            parsed.staged[table] = stager.add(table, with_lineage(data, key, batch_id, at))
    return parsed


def parse_files(
    reader: Reader, staging: str, batch_id: str, at: dt.datetime, items: Iterable[tuple[int, str]]
) -> Iterator[tuple[int, Parsed]]:
    """``mapPartitions`` function over (index, file key) pairs: read, stage, report.

    The reports are yielded once the staged files are closed (complete) on disk.
    """
    stager = Stager(staging)
    try:
        done = [
            (index, stage(_safe_read(reader, Path(key)), key, stager, batch_id, at))
            for index, key in items
        ]
    finally:
        stager.close()
    yield from done


def conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` in the column order and types of ``target`` (absent columns as nulls).

    Structs are cast by field name, so a file with fewer INFO or FORMAT fields, or a wearables
    drop from before a firmware update, joins a table that has more.
    """
    columns = []
    for spec in target:
        index = batch.schema.get_field_index(spec.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, spec.type))
            continue
        column = batch.column(index)
        columns.append(column if column.type == spec.type else column.cast(spec.type))
    return pa.RecordBatch.from_arrays(columns, schema=target)


def stream_staged(target: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator]:
    """``mapInArrow`` function: (path, first, count) runs in, conformed row batches out.

    Runs are small (a wearables drop is a few dozen rows), so consecutive batches of one schema
    are gathered and conformed together, and each staged file is opened once per task.
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        files: dict[str, tuple[pa.MemoryMappedFile, pa.ipc.RecordBatchFileReader]] = {}
        gathered: list[pa.RecordBatch] = []
        rows = 0
        try:
            for batch in batches:
                for path, first, count in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                    if path not in files:
                        source = pa.memory_map(path)
                        files[path] = (source, pa.ipc.open_file(source))
                    staged = files[path][1]
                    for i in range(first, first + count):
                        part = staged.get_batch(i)
                        if gathered and not gathered[0].schema.equals(part.schema):
                            yield from _flush(gathered, target)
                            rows = 0
                        gathered.append(part)
                        rows += part.num_rows
                        if rows >= STAGED_BATCH_ROWS:
                            yield from _flush(gathered, target)
                            rows = 0
            yield from _flush(gathered, target)
        finally:
            for source, _ in files.values():
                source.close()

    return run


def _flush(gathered: list[pa.RecordBatch], target: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The gathered batches (one schema) as one conformed batch; empties ``gathered``."""
    if gathered:
        combined = pa.Table.from_batches(gathered).combine_chunks()
        gathered.clear()
        for batch in combined.to_batches():
            yield conform(batch, target)


def _relaxed(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every nested field nullable (Spark's file writers make them so anyway)."""
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _relaxed(f.type)) for f in kind])
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_relaxed(kind.value_type))
    if pa.types.is_map(kind):
        return pa.map_(kind.key_type, _relaxed(kind.item_type))
    return kind


def write_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """The schema a commit writes: the table's and the files', unified, all nullable.

    Unifying with the table's own schema first keeps its types (an int64 column stays int64
    when a file brings int32), so the part files of a table always merge on read.
    """
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    return pa.schema([pa.field(f.name, _relaxed(f.type)) for f in unified])


def lineaged(schema: pa.Schema, at: dt.datetime) -> pa.Schema:
    """The schema the job gives a reader table once lineage is added."""
    return with_lineage(schema.empty_table(), "", "", at).schema
