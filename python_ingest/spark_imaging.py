"""Bronze ``imaging_features`` on the ``spark`` engine: the radiomics pass on Spark executors.

The same pass as ``python_ingest.imaging_features.compute_imaging_features``, with the work
spread by Series Instance UID instead of over a local process pool. Nothing of the computation
is redone here: the executors build each series' task with ``imaging_features._tasks`` (same
grouping, identity, hash and pixel paths) and compute its row with ``imaging_features._compute``
(decode, segment, pyradiomics, embedding), and the driver decides what to skip with
``imaging_features._up_to_date``. Rows therefore carry the same content, lineage and
``_record_hash`` (sha256 of the series' instance hashes) as on the local engine.

Two Spark passes over ``bronze/imaging_instances`` (the table the spark engine landed, parquet
or Delta), each hash-partitioned by series so a task sees every instance of its series:

1. plan: per series, its record hash and modality (a few strings per series to the driver),
   compared with the rows already in ``bronze/imaging_features``: unchanged series are skipped,
   so a re-run computes and writes nothing;
2. compute: the series to do, joined back to their instances, go through a ``mapInArrow`` that
   yields each series' row; Spark's writer consumes them through ``spark_store.SparkTables``
   (append, or replace by ``series_instance_uid`` for recomputed series), one commit per chunk.

Pixels are read by path on the executors, so the source folder must be visible to every
executor (as for the ingestion itself).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from python_ingest import imaging_radiomics as radiomics
from python_ingest.imaging_features import (
    _IDENTITY,
    _LAYOUT,
    INSTANCES,
    FeatureSummary,
    SeriesTask,
    _compute,
    _Existing,
    _tasks,
    _up_to_date,
)
from python_ingest.imaging_features_schema import SCHEMA, TABLE
from python_ingest.model import BATCH_ID, INGESTED_AT, RECORD_HASH, SOURCE_FILE
from python_ingest.spark_parse import conform, write_schema
from python_ingest.spark_session import RUNTIME_CONF
from python_ingest.spark_store import SparkTables, table_format

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

UID = "series_instance_uid"
TAG = TABLE  # the parquet commits of this pass (spark_store's recovery is per tag)
# Series per commit. Each commit is a few Spark jobs (about a second each locally), so chunks
# are larger than the local pass's 128; a killed run still loses only the chunk in flight.
CHUNK_SERIES = 2048
PLAN_SCHEMA = pa.schema(
    [(UID, pa.string()), ("record_hash", pa.string()), ("modality", pa.string())]
)


def _partition_rows(batches: Iterator[pa.RecordBatch]) -> list[dict[str, Any]]:
    """A partition's instance rows as the dicts ``_tasks`` groups (DuckDB's row values)."""
    rows: list[dict[str, Any]] = []
    for batch in batches:
        rows.extend(batch.to_pylist())
    return rows


def plan_series(source: str | None) -> Callable[[Iterator[pa.RecordBatch]], Iterator]:
    """``mapInArrow`` function: instance rows in, one (uid, record hash, modality) per series."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tasks = _tasks(_partition_rows(batches), Path(source) if source else None)
        if tasks:
            yield pa.RecordBatch.from_pylist(
                [
                    {
                        UID: t.series_instance_uid,
                        "record_hash": t.record_hash,
                        "modality": t.identity.get("modality"),
                    }
                    for t in tasks
                ],
                schema=PLAN_SCHEMA,
            )

    return run


def compute_series(
    target: pa.Schema, batch_id: str, at: dt.datetime
) -> Callable[[Iterator[pa.RecordBatch]], Iterator]:
    """``mapInArrow`` function: instance rows of whole series in, one feature row per series.

    A row is yielded as soon as its series is done, so Spark writes while the task computes.
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for task in _tasks(_partition_rows(batches), None):
            row = _compute(task)
            row[BATCH_ID], row[INGESTED_AT] = batch_id, at
            yield conform(pa.RecordBatch.from_pylist([row], schema=SCHEMA), target)

    return run


def _instances(store: SparkTables, bronze: Path) -> DataFrame | None:
    """The instance columns ``imaging_features._read`` selects, from the spark-landed table."""
    from pyspark.sql import functions as sf

    frame = store.read(bronze / INSTANCES)
    if frame is None:
        return None
    # A Modality LUT Sequence (0028,3000) replaces the rescale: pydicom applies it.
    lut = (sf.instr("header_json", '"00283000"') > 0).alias("has_modality_lut")
    columns = [UID, *_IDENTITY, *_LAYOUT, "has_pixel_data", SOURCE_FILE, RECORD_HASH]
    return frame.where(sf.col(UID).isNotNull()).select(*columns, lut)


def _existing(store: SparkTables, target: Path) -> dict[str, _Existing]:
    """What decides whether each row already in ``imaging_features`` is current."""
    frame = store.read(target)
    if frame is None:
        return {}
    state = [UID, RECORD_HASH, "extractor_version", "extractor_settings", "status"]
    return {row[0]: _Existing(*row[1:]) for row in frame.select(*state).collect()}


def _by_series(frame: DataFrame, spark: SparkSession, series: int) -> DataFrame:
    """``frame`` hash-partitioned by series: every instance of a series in one task."""
    slices = max(1, min(series, 4 * spark.sparkContext.defaultParallelism))
    return frame.repartition(slices, UID)


def _chunk_frame(
    spark: SparkSession,
    instances: DataFrame,
    uids: list[str],
    target: pa.Schema,
    batch_id: str,
    at: dt.datetime,
) -> DataFrame:
    """The feature rows of series ``uids``, computed on the executors as Spark writes them."""
    from pyspark.sql import functions as sf
    from pyspark.sql.pandas.types import from_arrow_schema

    wanted = spark.createDataFrame([(uid,) for uid in uids], f"{UID} string")
    members = instances.join(sf.broadcast(wanted), UID)
    return _by_series(members, spark, len(uids)).mapInArrow(
        compute_series(target, batch_id, at), from_arrow_schema(target)
    )


def compute_imaging_features_spark(
    lakehouse: Path, spark: SparkSession, source: Path | None = None
) -> FeatureSummary:
    """Bring ``bronze/imaging_features`` up to date with ``bronze/imaging_instances`` on Spark.

    ``source`` limits the pass to series with a file under that folder (as ``mmlake ingest
    --source`` does); without it, every series is considered and rows of series that left
    ``imaging_instances`` are deleted. The same contract as the local pass.
    """
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    for key, value in RUNTIME_CONF.items():
        spark.conf.set(key, value)
    summary = FeatureSummary()
    bronze = lakehouse / "bronze"
    features = bronze / TABLE
    store = SparkTables(spark, table_format(spark, bronze))
    for path in (bronze / INSTANCES, features):
        store.check(path)
    store.recover(features, TAG)
    instances = _instances(store, bronze)
    if instances is None:
        return summary
    existing = _existing(store, features)
    where = str(source.resolve()) if source is not None else None
    plan = (
        _by_series(instances, spark, 4 * spark.sparkContext.defaultParallelism)
        .mapInArrow(plan_series(where), from_arrow_schema(PLAN_SCHEMA))
        .collect()
    )
    summary.series_seen = len(plan)
    version = radiomics.extractor_version()
    todo = sorted(
        uid
        for uid, record_hash, modality in plan
        if not _up_to_date(existing.get(uid), _plan_task(uid, record_hash, modality), version)
    )
    summary.series_skipped = len(plan) - len(todo)
    if source is None:
        vanished = sorted(existing.keys() - {row[0] for row in plan})
        if vanished:
            store.replace(features, None, vanished, TAG, column=UID)
            summary.series_removed = len(vanished)
    if not todo:
        return summary
    held = store.read(features)
    schemas = [SCHEMA] if held is None else [to_arrow_schema(held.schema, timezone="UTC"), SCHEMA]
    target = write_schema(schemas)
    batch_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    for start in range(0, len(todo), CHUNK_SERIES):
        chunk = todo[start : start + CHUNK_SERIES]
        frame = _chunk_frame(spark, instances, chunk, target, batch_id, dt.datetime.now(dt.UTC))
        if any(uid in existing for uid in chunk):
            # Delta's replaceWhere must cover every new row: the predicate names the chunk.
            store.replace(features, frame, chunk, TAG, column=UID)
        else:
            store.append(features, frame, TAG)
    written = store.read(features)
    assert written is not None
    counts = written.where(written[BATCH_ID] == batch_id).groupBy("status").count().collect()
    summary.by_status.update({row[0]: row[1] for row in counts})
    return summary


def _plan_task(uid: str, record_hash: str, modality: str | None) -> SeriesTask:
    """The part of a series' task ``_up_to_date`` reads (its hash and modality)."""
    return SeriesTask(uid, {"modality": modality}, (), (), 0, "", record_hash)
