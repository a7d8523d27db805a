"""``imaging_features`` on the ``spark`` engine: the same rows as the local radiomics pass.

One generated cohort is landed and its features computed by both engines (local: Delta with
deltalake and a process pool; spark: parquet through a local Spark session, no Delta jars
offline). The spark rows must equal the local ones column for column, lineage and
``_record_hash`` included (only the batch id and landing time differ); no tolerance is needed,
since both engines run the very same per-series computation on the same pixels. A re-run
computes and writes nothing; a changed instance re-computes its series only, in place; a
series that left ``imaging_instances`` loses its row.

One SparkSession (``local[2]``, the dbt profile's settings) serves the module and is stopped,
JVM included, at the end.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pydicom
import pytest

pytest.importorskip("pyspark")

from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.imaging import ImagingReader
from python_ingest.imaging_features import FeatureSummary, compute_imaging_features
from python_ingest.imaging_features_schema import TABLE
from python_ingest.job import IngestJob
from python_ingest.spark_engine import SparkIngestJob
from python_ingest.spark_imaging import compute_imaging_features_spark
from python_ingest.spark_store import SparkTables

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime"),
]

# Every column but the two that say when a row was written.
CONTENT = "select * exclude (_ingest_batch_id, _ingested_at) from {t} order by series_instance_uid"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort")
    config = GenerationConfig(
        patients=12, seed=23, dirty_rate=0.05, image_size=32, modalities=("ehr", "imaging")
    )
    generate_cohort(config, out)
    return out / "imaging"


def _land(spark: Any, source: Path, local: Path, remote: Path) -> dict[str, FeatureSummary]:
    """Both engines over ``source``: instances, then their features (as ``mmlake ingest``)."""
    IngestJob(ImagingReader(), local).run(source)
    SparkIngestJob(ImagingReader(), remote, spark).run(source)
    return {
        "local": compute_imaging_features(local, source=source),
        "spark": compute_imaging_features_spark(remote, spark, source=source),
    }


@pytest.fixture(scope="module")
def landed(spark: Any, cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    local, remote = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("spark")
    with contextlib.redirect_stderr(io.StringIO()):
        out: dict[str, Any] = {
            "local": local,
            "spark": remote,
            "summaries": _land(spark, cohort, local, remote),
        }
        out["parts"] = _parts(remote / "bronze" / TABLE)
        out["rerun"] = compute_imaging_features_spark(remote, spark, source=cohort)
    return out


def _parts(table: Path) -> dict[str, int]:
    """Every file of a table folder and its mtime: a re-run that writes nothing keeps them."""
    return {str(p.relative_to(table)): p.stat().st_mtime_ns for p in table.rglob("*")}


def _local(duck_conn: duckdb.DuckDBPyConnection, lake: Path, sql: str) -> list[tuple]:
    return duck_conn.execute(sql.format(t=f"delta_scan('{lake / 'bronze' / TABLE}')")).fetchall()


def _spark(duck_conn: duckdb.DuckDBPyConnection, lake: Path, sql: str) -> list[tuple]:
    source = f"read_parquet('{lake / 'bronze' / TABLE}/*.parquet', union_by_name = true)"
    return duck_conn.execute(sql.format(t=source)).fetchall()


def _assert_same_rows(duck_conn: duckdb.DuckDBPyConnection, local: Path, remote: Path) -> None:
    hashes = "select _record_hash from {t}"
    assert Counter(_spark(duck_conn, remote, hashes)) == Counter(_local(duck_conn, local, hashes))
    assert _spark(duck_conn, remote, CONTENT) == _local(duck_conn, local, CONTENT)


def test_spark_features_equal_the_local_engine(
    landed: dict[str, Any], duck_conn: duckdb.DuckDBPyConnection
) -> None:
    local, remote = landed["local"], landed["spark"]
    summaries = landed["summaries"]
    assert summaries["spark"] == summaries["local"]  # seen, skipped, computed by status
    assert summaries["local"].series_computed >= 5, "the cohort has too few series to compare"
    _assert_same_rows(duck_conn, local, remote)
    count = "select count(*), count(distinct series_instance_uid) from {t}"
    assert _spark(duck_conn, remote, count) == _local(duck_conn, local, count)
    # Lineage: the same batch-independent columns, and a batch id and time on every row.
    lineage = "select count(*) from {t} where _ingest_batch_id is null or _ingested_at is null"
    assert _spark(duck_conn, remote, lineage) == [(0,)]
    # Typed the same: DuckDB sees the same columns and types in parquet as in Delta.
    describe = "select column_name, column_type from (describe select * from {t})"
    assert _spark(duck_conn, remote, describe) == _local(duck_conn, local, describe)


def test_rerun_computes_and_writes_nothing(landed: dict[str, Any]) -> None:
    rerun, first = landed["rerun"], landed["summaries"]["spark"]
    assert rerun == FeatureSummary(first.series_seen, first.series_seen)
    assert _parts(landed["spark"] / "bronze" / TABLE) == landed["parts"]


def _series_folders(cohort: Path, n: int) -> list[Path]:
    return sorted({p.parent for p in cohort.rglob("*.dcm")})[:n]


def test_changed_and_vanished_series(
    spark: Any, cohort: Path, duck_conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    source = tmp_path / "imaging"
    for folder in _series_folders(cohort, 3):
        shutil.copytree(folder, source / folder.relative_to(cohort))
    local, remote = tmp_path / "local", tmp_path / "spark"
    with contextlib.redirect_stderr(io.StringIO()):
        first = _land(spark, source, local, remote)
    assert first["spark"] == first["local"] and first["spark"].series_computed == 3
    # A modality re-sends one slice with a corrected header: its series alone is recomputed,
    # and its row replaced (not duplicated) on both engines.
    changed = sorted(source.rglob("*.dcm"))[0]
    dataset = pydicom.dcmread(changed)
    dataset.InstitutionName = "Corrected Institution"
    dataset.save_as(changed)
    before = dict(_spark(duck_conn, remote, "select series_instance_uid, _record_hash from {t}"))
    with contextlib.redirect_stderr(io.StringIO()):
        again = _land(spark, source, local, remote)
    assert again["spark"] == again["local"]
    assert (again["spark"].series_skipped, again["spark"].series_computed) == (2, 1)
    after = dict(_spark(duck_conn, remote, "select series_instance_uid, _record_hash from {t}"))
    assert after.keys() == before.keys() and sum(after[k] != before[k] for k in after) == 1
    _assert_same_rows(duck_conn, local, remote)
    # A row whose series is not in imaging_instances (left over, say, from a removed file) is
    # deleted by a pass over the whole table (no source), as on the local engine.
    from pyspark.sql import functions as sf

    path = remote / "bronze" / TABLE
    rows = spark.read.parquet(str(path))
    uid = sf.concat("series_instance_uid", sf.lit(".9"))
    ghost = rows.limit(1).withColumn("series_instance_uid", uid)
    SparkTables(spark, "parquet").append(path, ghost, "test")
    removed = compute_imaging_features_spark(remote, spark)
    assert (removed.series_removed, removed.series_skipped, removed.series_computed) == (1, 3, 0)
    _assert_same_rows(duck_conn, local, remote)


def test_cli_computes_imaging_features_with_the_spark_engine(
    spark: Any, cohort: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from mmlake.cli import app

    source = tmp_path / "imaging"
    for folder in _series_folders(cohort, 2):
        shutil.copytree(folder, source / folder.relative_to(cohort))
    lakehouse = tmp_path / "lakehouse"
    args = ["ingest", "--source", str(source), "--modality", "imaging", "--quiet"]
    args += ["--lakehouse", str(lakehouse), "--engine", "spark"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output  # landed; the dirty cohort quarantines two
    assert "imaging features: 2 series, 0 unchanged, 2 computed" in result.output
    assert "not computed by the spark engine" not in result.output
    assert any((lakehouse / "bronze" / TABLE).glob("*.parquet"))
    result = CliRunner().invoke(app, args)
    assert "imaging features: 2 series, 2 unchanged" in result.output, result.output
