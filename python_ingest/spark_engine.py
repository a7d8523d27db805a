"""The ``spark`` engine: the same ingestion jobs on PySpark, writing bronze through Spark.

``SparkIngestJob`` behaves like ``python_ingest.job.IngestJob``: the same reader lists the files
(``discover``), files landed before with the same sha256 are skipped, each chunk is committed in
the ledger's order (``started`` rows, data and quarantine, ``landed`` rows), and a changed or
half-landed file is re-landed in place of what an earlier attempt left. Rows carry the same
lineage columns, so both engines give the same rows and ``_record_hash`` values per table.

What runs on Spark: the parsing (the file paths are spread over the executors, where the same
``reader.read(path)`` runs in Spark's Python workers) and every write (``DataFrame.write`` to
``<lakehouse>/bronze/<table>``, Delta or parquet: ``python_ingest.spark_store``). Between the two,
each executor stages its files' tables as Arrow IPC files under ``<lakehouse>/spark/staging``
and sends the driver only what it needs to decide (counts, quarantined records, schemas); the
driver checks column types against the tables, then each table is written by a ``mapInArrow``
that streams the staged batches, conformed to the table's schema, into Spark's writer. Rows never
travel through the driver. Readers open files by path and the staging folder is a path, so the
source folder and the lakehouse must be visible to every executor (true for ``local[*]`` and for
clusters with a shared mount).

Genomics VCFs may be parsed by Glow instead when the session has it: ``python_ingest.spark_glow``.

Limits: a classic session is needed (the paths are spread with the ``SparkContext``; Spark
Connect has none), and one lakehouse is landed by one engine: the local engine writes Delta
with deltalake, this one Delta or parquet through Spark, and a table of the other format is
refused rather than mixed (``spark_store.EngineMismatchError``). On a laptop the engine costs
a JVM start (6-9 s) and about a second per Spark job (a chunk is a few jobs per table), so the
local engine is faster on small inputs; the spark engine is for when the executors are many.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from python_ingest.job import ModalitySummary, _pause_point, _type_conflict, split_pending
from python_ingest.ledger import LOG_SCHEMA, FileState, Ledger, SourceFile
from python_ingest.model import Quarantined, Reader
from python_ingest.spark_glow import GlowVariants
from python_ingest.spark_parse import Parsed, lineaged, parse_files, stream_staged, write_schema
from python_ingest.spark_session import RUNTIME_CONF
from python_ingest.spark_store import SparkTables, table_format

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TARGET_FILE_BYTES = 256 * 1024 * 1024  # Arrow bytes per written parquet/Delta file, roughly
# A chunk is the unit of commit. Its rows never pass through the driver (only counts, schemas
# and bounded quarantine payloads do), so chunks can be larger than the local engine's: fewer
# commits, and fewer fixed costs of a Spark job (about a second each on a local session).
CHUNK_FILES = 20_000
CHUNK_BYTES = 8 * 1024**3
Pending = tuple[list[SourceFile], int, set[str]]


def _chunks(files: list[SourceFile]) -> Iterator[list[SourceFile]]:
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


class SparkIngestJob:
    """Lands one modality from ``source`` into ``<lakehouse>/bronze`` on a Spark session."""

    def __init__(self, reader: Reader, lakehouse: Path, spark: SparkSession) -> None:
        self.reader = reader
        self.spark = spark
        self.bronze = lakehouse / "bronze"
        self.staging_root = lakehouse / "spark" / "staging"
        self.ledger = Ledger(self.bronze)  # its paths and quarantine row builder; no Delta IO
        for key, value in RUNTIME_CONF.items():
            spark.conf.set(key, value)
        self.store = SparkTables(spark, table_format(spark, self.bronze))
        self.glow = GlowVariants.for_reader(reader, spark)
        self._schemas: dict[str, pa.Schema | None] = {}

    def _state(self) -> dict[str, FileState]:
        """Latest status and hash of every file of this modality (``Ledger.state``'s rule)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as sf

        log = self.store.read(self.ledger.log_path)
        if log is None:
            return {}
        latest = Window.partitionBy("path").orderBy(
            sf.coalesce("finished_at", "started_at").desc(), (sf.col("status") == "landed").desc()
        )
        rows = (
            log.where(sf.col("modality") == self.reader.modality)
            .withColumn("_rank", sf.row_number().over(latest))
            .where("_rank = 1")
            .select("path", "sha256", "status")
            .collect()
        )
        return {row.path: FileState(row.sha256, row.status) for row in rows}

    def pending(self, source: Path) -> Pending:
        """(files to land, files skipped as already landed, keys seen before).

        First finishes or undoes what a killed run of this modality left (parquet commits,
        staged files), so that the state read here is that of whole commits.
        """
        modality = self.reader.modality
        tables = [self.bronze / t for t in self.reader.tables]
        for path in [*tables, self.ledger.quarantine_path, self.ledger.log_path]:
            self.store.check(path)
            self.store.recover(path, modality)
        for leftover in self.staging_root.glob(f"{modality}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if (use_landed := getattr(self.reader, "use_landed", None)) is not None:
            use_landed(self._landed_values)
        return split_pending(self.reader, source, self._state())

    def _landed_values(self, table: str, column: str) -> list[str]:
        """``Ledger.landed_values`` read through Spark (the table may be parquet here)."""
        frame = self.store.read(self.bronze / table)
        if frame is None:
            return []
        rows = frame.select(column).where(f"`{column}` is not null").distinct().collect()
        return [row[0] for row in rows]

    def run(
        self,
        source: Path,
        on_file: Callable[[int], None] | None = None,
        pending: Pending | None = None,
    ) -> ModalitySummary:
        """Land what is pending under ``source`` (``pending`` if the caller already listed it)."""
        summary = ModalitySummary(self.reader.modality)
        todo, summary.files_skipped, seen = pending or self.pending(source)
        summary.files_seen = len(todo) + summary.files_skipped
        if not todo:
            return summary
        batch_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
        self._schemas = {t: self.store.arrow_schema(self.bronze / t) for t in self.reader.tables}
        for number, chunk in enumerate(_chunks(todo)):
            staging = self.staging_root / f"{self.reader.modality}-{batch_id}-{number}"
            staging.mkdir(parents=True)
            try:
                self._land_chunk(chunk, staging, batch_id, seen, summary)
            finally:
                if self.glow is not None:
                    self.glow.release()
                shutil.rmtree(staging, ignore_errors=True)
            if on_file is not None:
                on_file(len(chunk))
        return summary

    def _parse(
        self, chunk: list[SourceFile], staging: Path, batch_id: str, at: dt.datetime
    ) -> tuple[list[Parsed], dict[str, DataFrame]]:
        """Parse the chunk on the executors: one ``Parsed`` per file, in chunk order."""
        sc = self.spark.sparkContext
        work = functools.partial(parse_files, self.reader, str(staging), batch_id, at)

        def parse(indices: list[int]) -> dict[int, Parsed]:
            if not indices:
                return {}
            slices = max(1, min(len(indices), 4 * sc.defaultParallelism))
            items = [(i, chunk[i].key) for i in indices]
            return dict(sc.parallelize(items, slices).mapPartitions(work).collect())

        if self.glow is not None:
            return self.glow.parse_chunk(chunk, parse, str(staging), batch_id, at)
        parsed = parse(list(range(len(chunk))))
        return [parsed[i] for i in range(len(chunk))], {}

    def _reject_type_conflicts(self, parsed: list[Parsed]) -> list[Parsed]:
        """``IngestJob._reject_type_conflicts``, on the schemas the executors reported."""
        accepted = dict(self._schemas)
        checked = []
        for item in parsed:
            conflict = None
            for table, schema in item.schemas.items():
                conflict = _type_conflict(accepted.get(table), schema)
                if conflict:
                    conflict = f"{conflict} bronze.{table}; the file cannot land until they agree"
                    break
            if conflict:  # as ``job_schema.set_aside`` does for the local engine
                aside = [Quarantined(locator, conflict) for locator in item.locators or []]
                checked.append(
                    Parsed(item.records_read, 0, [*item.quarantined, *aside], {})
                    if item.locators is not None
                    else Parsed(1, 0, [Quarantined("file", conflict)], {})
                )
                continue
            for table, schema in item.schemas.items():
                current = accepted.get(table)
                # The check above passed; if Arrow cannot unify, keep the stricter schema.
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
                    accepted[table] = (
                        schema
                        if current is None
                        else pa.unify_schemas([current, schema], promote_options="permissive")
                    )
            checked.append(item)
        return checked

    def _frame(
        self, table: str, parsed: list[Parsed], extra: DataFrame | None, at: dt.datetime
    ) -> DataFrame | None:
        """The chunk's rows of ``table``, streamed from the staged files (None: no rows)."""
        from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

        staged = [item for item in parsed if table in item.staged]
        if not staged and extra is None:
            return None
        schemas = [lineaged(item.schemas[table], at) for item in staged]
        if extra is not None:
            schemas.append(to_arrow_schema(extra.schema, timezone="UTC"))
        existing = self._schemas.get(table)
        target = write_schema([existing, *schemas] if existing is not None else schemas)
        self._schemas[table] = target
        if not staged:
            return extra
        runs = [item.staged[table] for item in staged]
        slices = max(1, min(len(runs), math.ceil(sum(r.nbytes for r in runs) / TARGET_FILE_BYTES)))
        rows = [(r.path, r.first, r.count) for r in runs]
        frame = self.spark.createDataFrame(
            self.spark.sparkContext.parallelize(rows, slices), "path string, first int, count int"
        ).mapInArrow(stream_staged(target), from_arrow_schema(target))
        return frame if extra is None else frame.unionByName(extra, allowMissingColumns=True)

    def _write(self, path: Path, frame: DataFrame | None, replaced: list[str]) -> None:
        if replaced:
            self.store.replace(path, frame, replaced, self.reader.modality)
        elif frame is not None:
            self.store.append(path, frame, self.reader.modality)

    def _log(self, chunk: list[SourceFile], batch_id: str, **values: object) -> None:
        """Append one ``_ingest_log`` row per file; list values are per file."""
        rows = []
        for i, f in enumerate(chunk):
            row = {"modality": self.reader.modality, "path": f.key, "size_bytes": f.size_bytes}
            row |= {"sha256": f.sha256, "batch_id": batch_id}
            row |= {k: v[i] if isinstance(v, list) else v for k, v in values.items()}
            rows.append(row)
        frame = self.spark.createDataFrame(pa.Table.from_pylist(rows, schema=LOG_SCHEMA))
        self.store.append(self.ledger.log_path, frame.coalesce(1), self.reader.modality)

    def _land_chunk(
        self,
        chunk: list[SourceFile],
        staging: Path,
        batch_id: str,
        seen: set[str],
        summary: ModalitySummary,
    ) -> None:
        """Parse, then commit in the ledger's order: started, data + quarantine, landed."""
        modality = self.reader.modality
        started = dt.datetime.now(dt.UTC)
        parsed, extra = self._parse(chunk, staging, batch_id, started)
        parsed = self._reject_type_conflicts(parsed)
        self._log(chunk, batch_id, status="started", started_at=dt.datetime.now(dt.UTC))
        _pause_point("started")
        keys = [f.key for f in chunk]
        replaced = keys if any(key in seen for key in keys) else []
        for table in self.reader.tables:
            frame = self._frame(table, parsed, extra.get(table), started)
            self._write(self.bronze / table, frame, replaced)
        bad = [(f, q) for f, p in zip(chunk, parsed, strict=True) for q in p.quarantined]
        quarantine = None
        if bad:
            rows = self.ledger.quarantine_table(modality, bad, batch_id, started)
            quarantine = self.spark.createDataFrame(rows).coalesce(1)
        self._write(self.ledger.quarantine_path, quarantine, replaced)
        _pause_point("data")
        self._log(
            chunk,
            batch_id,
            status="landed",
            started_at=started,
            finished_at=dt.datetime.now(dt.UTC),
            records_read=[p.records_read for p in parsed],
            records_landed=[p.records_landed for p in parsed],
            records_quarantined=[len(p.quarantined) for p in parsed],
        )
        summary.files_landed += len(chunk)
        summary.records_read += sum(p.records_read for p in parsed)
        summary.records_landed += sum(p.records_landed for p in parsed)
        summary.records_quarantined += sum(len(p.quarantined) for p in parsed)
