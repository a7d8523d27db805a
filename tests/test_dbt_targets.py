"""The dbt project on its three targets.

- local (DuckDB): full build in-process through mmlake.dbt_runner, gold published as a real
  Delta table that DuckDB reads back through a view.
- spark: the reference models on a local Spark session, in a subprocess to keep the JVM out of
  pytest, without leaving Spark/Hive/Derby files in the working directory.
- databricks: no workspace is reachable here, so parse and compile offline and check what
  dbt would run: Delta tables in <catalog>.<layer> schemas.

Delta tables are inspected through their _delta_log file names and DuckDB's delta_scan,
never through deltalake readers (they can abort the interpreter at exit next to DuckDB's
delta extension).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmlake.dbt_runner import REPO_ROOT, run_dbt
from mmlake.duckdb_ext import BundledExtensionError, bundled_extension_path, connect

GOLD_MODEL = "gene_panel"
SEED_CSV = REPO_ROOT / "seeds" / "gene_panel_regions.csv"
# Files Spark, Hive, Derby or dbt create in the working directory when left unconfigured.
STRAY_ARTIFACTS = ("metastore_db", "derby.log", "spark-warehouse", "target", "logs")


def seed_rows() -> int:
    with SEED_CSV.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def delta_versions(table: Path) -> list[int]:
    """Committed versions, read from the commit file names in _delta_log."""
    return sorted(int(p.stem) for p in (table / "_delta_log").glob("*.json"))


def existing_artifacts(directory: Path) -> set[str]:
    return {name for name in STRAY_ARTIFACTS if (directory / name).exists()}


@pytest.fixture(scope="module")
def local_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One `dbt build` on the local target into a fresh LAKEHOUSE_ROOT."""
    root = tmp_path_factory.mktemp("local") / "lakehouse"
    before = existing_artifacts(REPO_ROOT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_ROOT", str(root))
        mp.delenv("MMLAKE_TARGET", raising=False)
        run_dbt(["build"], target="local")
        assert existing_artifacts(REPO_ROOT) == before, "dbt wrote into the repository root"
        yield root


def test_bundled_extensions_load_offline() -> None:
    conn = connect()
    try:
        loaded = {
            name
            for (name,) in conn.execute(
                "select extension_name from duckdb_extensions() where loaded"
            ).fetchall()
        }
        autoinstall = conn.execute(
            "select current_setting('autoinstall_known_extensions')"
        ).fetchone()
    finally:
        conn.close()
    assert {"delta", "vss"} <= loaded
    assert autoinstall == (False,)


def test_missing_extension_wheel_is_a_clear_error() -> None:
    with pytest.raises(BundledExtensionError, match="pip install duckdb-extension-nosuchext"):
        bundled_extension_path("nosuchext")


def test_local_gold_is_a_delta_table(local_lakehouse: Path) -> None:
    table = local_lakehouse / "gold" / GOLD_MODEL
    assert (table / "_delta_log" / "00000000000000000000.json").is_file()
    conn = connect()
    try:
        (count,) = conn.execute("select count(*) from delta_scan(?)", [str(table)]).fetchone()
    finally:
        conn.close()
    assert count == seed_rows()


def test_local_gold_relation_is_a_view_over_delta(local_lakehouse: Path) -> None:
    table = (local_lakehouse / "gold" / GOLD_MODEL).resolve()
    conn = connect(local_lakehouse / "warehouse.duckdb", read_only=True)
    try:
        kinds = dict(
            conn.execute(
                "select table_schema || '.' || table_name, table_type "
                "from information_schema.tables"
            ).fetchall()
        )
        (view_sql,) = conn.execute(
            "select sql from duckdb_views() where schema_name = 'gold' and view_name = ?",
            [GOLD_MODEL],
        ).fetchone()
        (count,) = conn.execute(f"select count(*) from gold.{GOLD_MODEL}").fetchone()
    finally:
        conn.close()
    assert kinds[f"gold.{GOLD_MODEL}"] == "VIEW"
    assert kinds["silver.stg_reference__gene_panel_regions"] == "BASE TABLE"
    assert kinds["bronze.gene_panel_regions"] == "BASE TABLE"
    assert f"delta_scan('{table}')" in view_sql
    assert count == seed_rows()


def test_each_local_build_adds_a_delta_version(local_lakehouse: Path) -> None:
    table = local_lakehouse / "gold" / GOLD_MODEL
    assert delta_versions(table) == [0]
    run_dbt(["build"], target="local", lakehouse=local_lakehouse)
    assert delta_versions(table) == [0, 1]


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")
def test_spark_target_builds_without_touching_the_working_directory(tmp_path: Path) -> None:
    lakehouse, workdir = tmp_path / "lakehouse", tmp_path / "cwd"
    workdir.mkdir()
    repo_before = existing_artifacts(REPO_ROOT)
    env = {**os.environ, "LAKEHOUSE_ROOT": str(lakehouse)}
    env.pop("MMLAKE_TARGET", None)
    completed = subprocess.run(
        # The reference models only: the rest of the graph reads bronze tables, which this
        # empty lakehouse does not have (tests/models/test_spark_build.py builds it all).
        [
            *(sys.executable, "-m", "mmlake.dbt_runner", "build", "--target", "spark"),
            *("--select", f"+{GOLD_MODEL}", "--indirect-selection", "cautious"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "Completed successfully" in completed.stdout
    assert list(workdir.iterdir()) == []
    assert existing_artifacts(REPO_ROOT) == repo_before
    spark_dir = lakehouse / "spark"
    assert (spark_dir / "derby" / "metastore_db").is_dir()
    gold_files = list((spark_dir / "warehouse" / "gold.db" / GOLD_MODEL).glob("*.parquet"))
    assert gold_files, "gold.gene_panel should be written under <lakehouse>/spark/warehouse"
    conn = connect()
    try:
        (count,) = conn.execute(
            "select count(*) from read_parquet(?)", [[str(p) for p in gold_files]]
        ).fetchone()
    finally:
        conn.close()
    assert count == seed_rows()


def test_databricks_target_renders_offline(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Placeholder credentials: parse and compile must not need a reachable workspace.
    monkeypatch.setenv("DATABRICKS_HOST", "dbc-00000000-0000.cloud.databricks.com")
    monkeypatch.setenv("DATABRICKS_HTTP_PATH", "/sql/1.0/warehouses/0000000000000000")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-a-real-token")
    monkeypatch.setenv("DATABRICKS_CATALOG", "precision_medicine")

    run_dbt(["parse"], target="databricks")
    manifest = json.loads((lakehouse / "dbt" / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "databricks"
    nodes = manifest["nodes"]
    gold = nodes[f"model.multimodal_lakehouse.{GOLD_MODEL}"]
    silver = nodes["model.multimodal_lakehouse.stg_reference__gene_panel_regions"]
    seed = nodes["seed.multimodal_lakehouse.gene_panel_regions"]
    assert (gold["database"], gold["schema"]) == ("precision_medicine", "gold")
    assert (silver["database"], silver["schema"]) == ("precision_medicine", "silver")
    assert (seed["database"], seed["schema"]) == ("precision_medicine", "bronze")
    assert gold["config"]["file_format"] == "delta"
    assert silver["config"]["file_format"] == "delta"
    assert gold["config"]["materialized"] == "table"
    assert gold["config"]["contract"]["enforced"] is True

    # Compiling needs no connection once cache population and introspection are off.
    run_dbt(
        ["compile", "--no-populate-cache", "--no-introspect", "-s", GOLD_MODEL],
        target="databricks",
    )
    compiled = next((lakehouse / "dbt" / "target" / "compiled").rglob(f"{GOLD_MODEL}.sql"))
    sql = compiled.read_text()
    assert "`precision_medicine`.`silver`.`stg_reference__gene_panel_regions`" in sql
