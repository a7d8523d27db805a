"""The ``spark`` ingestion engine on a local Spark session (parquet: no Delta jars offline).

One generated cohort (every modality) is landed by both engines; the spark engine must
give the same rows (count and multiset of ``_record_hash`` per table), the same quarantine
(file, locator, reason) and the same per-file accounting as the local engine. A re-run skips
every file and rewrites nothing; a changed file, a run killed between the data and the
``landed`` rows, and a drop with a new field behave as on the local engine. Glow cannot be
registered offline: its detection is tested on this session and on stand-ins, and its branch is
run with a stand-in loader that returns what Glow's ``vcf`` source would.

One SparkSession (``local[2]``, the dbt profile's settings) serves the module and is stopped,
JVM included, at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

pytest.importorskip("pyspark")

from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest import spark_engine
from python_ingest.genomics import VARIANTS_TABLE, GenomicsReader
from python_ingest.job import IngestJob, ModalitySummary
from python_ingest.registry import reader_for
from python_ingest.spark_engine import SparkIngestJob
from python_ingest.spark_glow import GLOW_OFF, GLOW_ON, GlowVariants, glow_registered
from python_ingest.spark_session import profile_settings
from python_ingest.spark_store import (
    PLAN,
    EngineMismatchError,
    SparkTables,
    has_data_source,
)
from tests.ingest.support import write_clashing_vcfs

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime"),
]

# The issue asks for EHR, genomics and wearables; imaging and notes cost a few seconds more.
MODALITIES = ("ehr", "genomics", "imaging", "notes", "wearables")
NOTICE = "Delta Lake jars not found on the Spark classpath: writing parquet to"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort")
    config = GenerationConfig(
        patients=30, seed=23, dirty_rate=0.05, image_size=32, modalities=MODALITIES
    )
    generate_cohort(config, out)
    return out


@pytest.fixture(scope="module")
def landed(spark: Any, cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both engines over the cohort, the spark engine twice; what each said and wrote."""
    local, remote = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("spark")
    out: dict[str, Any] = {"local": local, "spark": remote, "summaries": {}, "reruns": {}}
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        for modality in MODALITIES:
            local_summary = IngestJob(reader_for(modality), local).run(cohort / modality)
            job = SparkIngestJob(reader_for(modality), remote, spark)
            out["summaries"][modality] = (local_summary, job.run(cohort / modality))
        out["parts"] = _parts(remote / "bronze")
        for modality in MODALITIES:
            job = SparkIngestJob(reader_for(modality), remote, spark)
            out["reruns"][modality] = job.run(cohort / modality)
    out["stderr"] = stderr.getvalue()
    return out


def _parts(bronze: Path) -> set[str]:
    return {str(p.relative_to(bronze)) for p in bronze.rglob("*") if p.is_file()}


def _delta(duck_conn: duckdb.DuckDBPyConnection, lake: Path, table: str, sql: str) -> list[tuple]:
    return duck_conn.execute(sql.format(t=f"delta_scan('{lake / 'bronze' / table}')")).fetchall()


def _parquet(duck_conn: duckdb.DuckDBPyConnection, lake: Path, table: str, sql: str) -> list[tuple]:
    source = f"read_parquet('{lake / 'bronze' / table}/*.parquet', union_by_name = true)"
    return duck_conn.execute(sql.format(t=source)).fetchall()


def _same(duck_conn: duckdb.DuckDBPyConnection, local: Path, remote: Path, table: str, sql: str):
    expected = Counter(_delta(duck_conn, local, table, sql))
    assert expected, f"{table}: the local engine landed nothing to compare"
    assert Counter(_parquet(duck_conn, remote, table, sql)) == expected, table


@pytest.mark.parametrize("modality", MODALITIES)
def test_spark_engine_lands_what_the_local_engine_lands(
    landed: dict[str, Any], duck_conn: duckdb.DuckDBPyConnection, modality: str
) -> None:
    local, remote = landed["local"], landed["spark"]
    local_summary, spark_summary = landed["summaries"][modality]
    assert spark_summary == local_summary
    assert spark_summary.files_landed and spark_summary.records_quarantined
    # The tables the cohort fills (it sends no FHIR DocumentReference), on both sides alike.
    tables = [t for t in reader_for(modality).tables if (local / "bronze" / t).is_dir()]
    assert tables == [t for t in reader_for(modality).tables if (remote / "bronze" / t).is_dir()]
    for table in tables:
        _same(duck_conn, local, remote, table, "select _record_hash from {t}")
        # Lineage: the same file and locator for every record.
        _same(duck_conn, local, remote, table, "select _source_file, _source_locator from {t}")
    where = f"where modality = '{modality}'"
    _same(
        duck_conn,
        local,
        remote,
        "_quarantine",
        f"select _source_file, _source_locator, reason, payload from {{t}} {where}",
    )
    accounting = "select path, sha256, records_read, records_landed, records_quarantined from {t}"
    _same(duck_conn, local, remote, "_ingest_log", f"{accounting} {where} and status = 'landed'")
    # Typed the same: DuckDB sees the same columns and types in parquet as in Delta.
    for table in tables:
        describe = "select column_name, column_type from (describe select * from {t})"
        assert _parquet(duck_conn, remote, table, describe) == _delta(
            duck_conn, local, table, describe
        )


def test_rerun_skips_every_file_and_rewrites_nothing(landed: dict[str, Any]) -> None:
    for modality, summary in landed["reruns"].items():
        first = landed["summaries"][modality][1]
        assert summary == ModalitySummary(modality, first.files_seen, first.files_seen)
    assert _parts(landed["spark"] / "bronze") == landed["parts"]


def test_notices_are_printed_once_per_session(landed: dict[str, Any]) -> None:
    said = landed["stderr"]
    assert said.count(NOTICE) == 1, said
    assert f"{NOTICE} {landed['spark'] / 'bronze'}; add io.delta:delta-spark_2.13" in said
    assert said.count(GLOW_OFF) == 1, said
    assert GLOW_ON not in said


def test_lakehouse_of_the_other_format_is_refused(spark: Any, landed: dict[str, Any]) -> None:
    job = SparkIngestJob(reader_for("wearables"), landed["local"], spark)
    with pytest.raises(EngineMismatchError, match="is a Delta table"):
        job.pending(landed["local"])


def test_session_settings_come_from_the_dbt_profile(spark: Any, tmp_path: Path) -> None:
    settings = profile_settings(tmp_path)
    assert settings["spark.sql.warehouse.dir"] == f"{tmp_path}/spark/warehouse"
    assert (
        settings["spark.driver.extraJavaOptions"] == f"-Dderby.system.home={tmp_path}/spark/derby"
    )
    assert spark.conf.get("spark.master") == settings["spark.master"] == "local[2]"
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"


# -- changes after landing: a rewritten file, a killed run, a new field ---------------------------


@pytest.fixture
def drops(cohort: Path, tmp_path: Path) -> Path:
    """A landing folder with the first 12 wearables drops and the enrollment register."""
    out = tmp_path / "wearables"
    files = reader_for("wearables").discover(cohort / "wearables")
    enrollment = [p for p in files if p.suffix == ".csv"]
    for path in enrollment + [p for p in files if p not in enrollment][:12]:
        target = out / path.relative_to(cohort / "wearables")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return out


def _both(spark: Any, source: Path, local: Path, remote: Path) -> None:
    IngestJob(reader_for("wearables"), local).run(source)
    SparkIngestJob(reader_for("wearables"), remote, spark).run(source)


def _events(duck_conn: duckdb.DuckDBPyConnection, local: Path, remote: Path) -> None:
    for table in ("wearables_events", "_quarantine"):
        sql = "select _source_file, _source_locator, _record_hash from {t}"
        if table == "_quarantine":
            sql = "select _source_file, _source_locator, reason from {t}"
        _same(duck_conn, local, remote, table, sql)


def test_changed_file_and_new_field_are_relanded_without_duplicates(
    spark: Any, duck_conn: duckdb.DuckDBPyConnection, drops: Path, tmp_path: Path
) -> None:
    local, remote = tmp_path / "local", tmp_path / "spark"
    _both(spark, drops, local, remote)
    # A device cloud re-sends a drop with its first line gone; another drop brings a new field.
    jsonl = sorted(drops.rglob("*.jsonl"))
    jsonl[0].write_bytes(b"\n".join(jsonl[0].read_bytes().split(b"\n")[1:]))
    new = jsonl[1].with_name("20991231T000000Z-new.jsonl")
    line = jsonl[1].read_bytes().split(b"\n")[0].rstrip(b"}") + b', "skin_temp_c": "33.1"}\n'
    new.write_bytes(line.replace(b'"event_id": "', b'"event_id": "new-'))
    _both(spark, drops, local, remote)
    _events(duck_conn, local, remote)
    rows = _parquet(
        duck_conn, remote, "wearables_events", "select count(*), count(skin_temp_c) from {t}"
    )
    assert rows[0][1] == 1 and rows[0][0] > 1  # older rows read the new column as null
    # Spark reads the evolved table too (mergeSchema).
    events = spark.read.option("mergeSchema", "true").parquet(
        str(remote / "bronze/wearables_events")
    )
    assert "skin_temp_c" in events.columns
    assert events.count() == rows[0][0]


def test_clashing_files_are_set_aside_alike(
    spark: Any, duck_conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Columns that clash with the table (by case, by type) quarantine their file's records
    one by one on Spark as on the local engine, and the batch goes on."""
    source, local, remote = tmp_path / "vcfs", tmp_path / "local", tmp_path / "spark"
    write_clashing_vcfs(source)
    local_summary = IngestJob(GenomicsReader(), local).run(source)
    spark_summary = SparkIngestJob(GenomicsReader(), remote, spark).run(source)
    assert spark_summary == local_summary and spark_summary.records_quarantined == 7
    _same(duck_conn, local, remote, "_quarantine", "select _source_locator, reason from {t}")
    accounting = "select path, records_read, records_landed, records_quarantined from {t}"
    _same(duck_conn, local, remote, "_ingest_log", f"{accounting} where status = 'landed'")


def test_run_killed_before_landed_rows_is_relanded_exactly_once(
    spark: Any,
    duck_conn: duckdb.DuckDBPyConnection,
    drops: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local, remote = tmp_path / "local", tmp_path / "spark"
    IngestJob(reader_for("wearables"), local).run(drops)

    def die(step: str) -> None:
        if step == "data":
            raise KeyboardInterrupt("killed after the data commit")

    with monkeypatch.context() as mp:
        mp.setattr(spark_engine, "_pause_point", die)
        with pytest.raises(KeyboardInterrupt):
            SparkIngestJob(reader_for("wearables"), remote, spark).run(drops)
    state = SparkIngestJob(reader_for("wearables"), remote, spark)._state()
    assert state and {s.status for s in state.values()} == {"started"}
    summary = SparkIngestJob(reader_for("wearables"), remote, spark).run(drops)
    assert summary.files_landed == len(state) and summary.files_skipped == 0
    _events(duck_conn, local, remote)


def test_interrupted_parquet_commits_are_finished_or_undone(spark: Any, tmp_path: Path) -> None:
    tables = SparkTables(spark, "parquet")
    path = tmp_path / "t"
    rows = pa.table({"_source_file": ["a", "b"], "x": [1, 2]})
    tables.append(path, spark.createDataFrame(rows), "m")
    # Killed before the plan: the pending rows never became visible and are dropped.
    spark.createDataFrame(rows).write.parquet(str(path / "_pending-m-1"))
    # Killed after the plan: the commit is finished (b's rows replaced by c's).
    old = sorted(p.name for p in path.glob("part-*.parquet"))
    new = pa.table({"_source_file": ["c"], "x": [3]})
    spark.createDataFrame(new).coalesce(1).write.parquet(str(path / "_pending-m-2"))
    (path / "_pending-m-2" / PLAN).write_text(json.dumps({"replaced": old}))
    spark.createDataFrame(new).write.parquet(str(path / "_pending-other-3"))  # not ours
    tables.recover(path, "m")
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("_")) == ["_pending-other-3"]
    values = sorted(r.x for r in spark.read.parquet(str(path)).collect())
    assert values == [3]


# -- Glow -------------------------------------------------------------------------------------


class _Refusing:
    """A stand-in session whose data source lookups fail the way Spark's do."""

    def __init__(self, error: str) -> None:
        self.error = error
        self.read = self

    def format(self, name: str) -> _Refusing:
        return self

    def load(self, path: str) -> None:
        raise RuntimeError(self.error)


def test_glow_detection(spark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert not has_data_source(spark, "vcf") and not glow_registered(spark)
    assert has_data_source(spark, "parquet")
    assert not has_data_source(_Refusing("[DATA_SOURCE_NOT_FOUND] Failed to find: vcf"), "vcf")
    assert has_data_source(_Refusing("[PATH_NOT_FOUND] Path does not exist: /x"), "vcf")
    registered = _Refusing("[PATH_NOT_FOUND] Path does not exist: /x")
    assert GlowVariants.for_reader(reader_for("genomics"), registered) is not None
    assert GlowVariants.for_reader(reader_for("wearables"), registered) is None
    assert capsys.readouterr().err.splitlines() == [GLOW_ON]


@pytest.fixture(scope="module")
def clean_vcfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate_cohort(
        GenerationConfig(patients=20, seed=5, dirty_rate=0.0, modalities=("ehr", "genomics")), out
    )
    return out / "genomics"


def _glow_stand_in(spark: Any, fail: bool = False):
    """What ``spark.read.format("vcf")`` gives: the reader's rows without our lineage."""

    def load(keys: list[str]) -> Any:
        if fail:
            raise RuntimeError("htsjdk.tribble.TribbleException: malformed line\n\tat ...")
        parts = []
        for key in keys:
            table = GenomicsReader().read(Path(key)).tables[VARIANTS_TABLE]
            table = table.drop_columns(["_source_locator", "_record_hash"])
            parts.append(
                table.append_column("_glow_file", pa.array([Path(key).as_uri()] * len(table)))
            )
        return spark.createDataFrame(pa.concat_tables(parts, promote_options="permissive"))

    return load


@pytest.mark.parametrize("fail", [False, True], ids=["glow-reads", "glow-fails-strict"])
def test_glow_branch(
    spark: Any,
    duck_conn: duckdb.DuckDBPyConnection,
    clean_vcfs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fail: bool,
) -> None:
    local, remote = tmp_path / "local", tmp_path / "spark"
    expected = IngestJob(GenomicsReader(), local).run(clean_vcfs)
    job = SparkIngestJob(GenomicsReader(), remote, spark)
    job.glow = GlowVariants(spark, load=_glow_stand_in(spark, fail))
    assert job.run(clean_vcfs) == expected
    _same(
        duck_conn, local, remote, "genomics_samples", "select _source_file, _record_hash from {t}"
    )
    count = "select _source_file, count(*) from {t} group by all"
    _same(duck_conn, local, remote, VARIANTS_TABLE, count)
    if fail:  # the project's reader took over: same hashes as the local engine
        assert re.search(r"Glow could not read \d+ VCF file\(s\) strictly", capsys.readouterr().err)
        _same(duck_conn, local, remote, VARIANTS_TABLE, "select _record_hash from {t}")
        return
    rows = _parquet(
        duck_conn,
        remote,
        VARIANTS_TABLE,
        "select _source_locator, contigName, start, _record_hash from {t}",
    )
    assert all(loc == f"{chrom}:{start + 1}" and len(h) == 64 for loc, chrom, start, h in rows)
    content = (
        "select contigName, start, referenceAllele, alternateAlleles::varchar, genotypes::varchar"
        " from {t}"
    )
    _same(duck_conn, local, remote, VARIANTS_TABLE, content)


def test_cli_ingest_with_the_spark_engine(spark: Any, drops: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmlake.cli import app

    lakehouse = tmp_path / "lakehouse"
    args = ["ingest", "--source", str(drops), "--modality", "wearables", "--quiet"]
    args += ["--lakehouse", str(lakehouse)]
    result = CliRunner().invoke(app, [*args, "--engine", "spark"])
    assert result.exit_code == 3, result.output  # landed, with quarantined records
    assert "wearables" in result.output
    assert any((lakehouse / "bronze" / "wearables_events").glob("*.parquet"))
    result = CliRunner().invoke(app, [*args, "--engine", "flink"])
    assert result.exit_code == 2 and "unknown engine 'flink'" in result.output
