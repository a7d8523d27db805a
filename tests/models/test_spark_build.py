"""The whole SQL graph on the `spark` target, from the same bronze as the local build.

Spark has no Delta jars here, so the local lakehouse's bronze is mirrored as parquet
(mmlake/bronze_mirror.py) and `dbt build --target spark` runs on a local Spark session in a
subprocess. dbt-spark cannot run Python models in session mode; they and their descendants are
excluded here (and named in the assertion message), everything else must build, pass its dbt
tests and produce the same rows as DuckDB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmlake.bronze_mirror import mirror_bronze_as_parquet
from mmlake.duckdb_ext import connect
from tests.models.conftest import Built

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime"),
]


def _manifest_nodes(built: Built) -> dict[str, dict]:
    manifest = built.lakehouse / "dbt" / "target" / "manifest.json"
    return json.loads(manifest.read_text(encoding="utf-8"))["nodes"]


def _spark_rows(lakehouse: Path, schema: str, name: str) -> int:
    folder = lakehouse / "spark" / "warehouse" / f"{schema}.db" / name
    # rglob: partitioned tables keep their files under <column>=<value>/ folders.
    files = [str(p) for p in folder.rglob("*.parquet")]
    if not files:
        return 0
    with connect() as conn:
        return conn.execute("select count(*) from read_parquet(?)", [files]).fetchone()[0]


def test_sql_models_build_on_spark_with_the_same_rows(built: Built, tmp_path: Path) -> None:
    if os.environ.get("MMLAKE_TEST_SELECT"):
        pytest.skip("the local build was restricted with MMLAKE_TEST_SELECT")
    nodes = _manifest_nodes(built)
    python_models = sorted(
        n["name"]
        for n in nodes.values()
        if n["resource_type"] == "model" and n["language"] == "python"
    )
    spark_lake = tmp_path / "spark_lakehouse"
    mirror_bronze_as_parquet(built.lakehouse, spark_lake)
    args = [sys.executable, "-m", "mmlake.dbt_runner", "build", "--target", "spark"]
    if python_models:
        args += ["--exclude", *(f"{name}+" for name in python_models)]
    env = {**os.environ, "LAKEHOUSE_ROOT": str(spark_lake)}
    env.pop("MMLAKE_TARGET", None)
    env.pop("MMLAKE_PSEUDONYM_KEY", None)  # the mirrored key file must give the same keys
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    built_on_spark = json.loads(
        (spark_lake / "dbt" / "target" / "run_results.json").read_text(encoding="utf-8")
    )["results"]
    models = [r["unique_id"] for r in built_on_spark if r["unique_id"].startswith("model.")]
    assert len(models) >= 10, f"too few models built on Spark: {models}"
    mismatches = []
    with connect(built.warehouse, read_only=True) as duck:
        for unique_id in models:
            node = nodes[unique_id]
            if node["config"].get("materialized") in {"view", "ephemeral"}:
                continue
            local = duck.execute(
                f'select count(*) from "{node["schema"]}"."{node["alias"]}"'
            ).fetchone()[0]
            spark = _spark_rows(spark_lake, node["schema"], node["alias"])
            if local != spark:
                mismatches.append(
                    f"{node['schema']}.{node['alias']}: duckdb {local}, spark {spark}"
                )
    assert not mismatches, "row counts differ between engines:\n" + "\n".join(mismatches)
