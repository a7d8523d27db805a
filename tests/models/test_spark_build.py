"""The whole dbt graph on the `spark` target, from the same bronze as the local build.

Spark has no Delta jars here, so the local lakehouse's bronze is mirrored as parquet
(mmlake/bronze_mirror.py) and the graph is built on a local Spark session in a subprocess by
`python -m mmlake.spark_python_models build --target spark`: dbt builds the SQL models, the
bridge runs the Python models (which dbt-spark cannot run in session mode) in the same
SparkSession. Every model must build, pass its dbt tests and produce the same rows as DuckDB.
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
from mmlake.spark_python_models import BRIDGE_RESULTS
from tests.models.conftest import Built

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime"),
]


def _manifest_nodes(built: Built) -> dict[str, dict]:
    manifest = built.lakehouse / "dbt" / "target" / "manifest.json"
    return json.loads(manifest.read_text(encoding="utf-8"))["nodes"]


def _model_descendants(built: Built, roots: list[str]) -> set[str]:
    """Models downstream of ``roots`` in the local manifest."""
    manifest = built.lakehouse / "dbt" / "target" / "manifest.json"
    child_map = json.loads(manifest.read_text(encoding="utf-8"))["child_map"]
    found: set[str] = set()
    stack = list(roots)
    while stack:
        for child in child_map.get(stack.pop(), []):
            if child.startswith("model.") and child not in found:
                found.add(child)
                stack.append(child)
    return found


def _spark_rows(lakehouse: Path, schema: str, name: str) -> int:
    folder = lakehouse / "spark" / "warehouse" / f"{schema}.db" / name
    # rglob: partitioned tables keep their files under <column>=<value>/ folders.
    files = [str(p) for p in folder.rglob("*.parquet")]
    if not files:
        return 0
    with connect() as conn:
        return conn.execute("select count(*) from read_parquet(?)", [files]).fetchone()[0]


def test_whole_graph_builds_on_spark_with_the_same_rows(built: Built, tmp_path: Path) -> None:
    if os.environ.get("MMLAKE_TEST_SELECT"):
        pytest.skip("the local build was restricted with MMLAKE_TEST_SELECT")
    nodes = _manifest_nodes(built)
    all_models = {uid for uid, n in nodes.items() if n["resource_type"] == "model"}
    python_models = sorted(uid for uid in all_models if nodes[uid]["language"] == "python")
    spark_lake = tmp_path / "spark_lakehouse"
    mirror_bronze_as_parquet(built.lakehouse, spark_lake)
    args = [sys.executable, "-m", "mmlake.spark_python_models", "build", "--target", "spark"]
    env = {**os.environ, "LAKEHOUSE_ROOT": str(spark_lake)}
    env.pop("MMLAKE_TARGET", None)
    env.pop("MMLAKE_PSEUDONYM_KEY", None)  # the mirrored key file must give the same keys
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    report = json.loads(
        (spark_lake / "dbt" / "target" / BRIDGE_RESULTS).read_text(encoding="utf-8")
    )
    bridged = [m["unique_id"] for m in report["python_models"]]
    assert bridged == python_models
    for uid in bridged:  # the build log names every model that went through the bridge
        assert f"from {uid} in the dbt SparkSession" in done.stdout
    # Exposures report "no-op"; anything else must have built or passed.
    ok = {"success", "pass", "no-op"}
    failed = [r for r in report["dbt_results"] if r["status"] not in ok]
    assert not failed, f"dbt nodes not successful on Spark: {failed}"
    by_dbt = {r["unique_id"] for r in report["dbt_results"] if r["unique_id"].startswith("model.")}
    assert not by_dbt & set(bridged)
    assert by_dbt | set(bridged) == all_models, (
        f"models not built on Spark: {sorted(all_models - by_dbt - set(bridged))}"
    )
    # The Python models' descendants were built after them, by dbt (features_notes at least).
    descendants = _model_descendants(built, bridged)
    assert descendants, "the Python models should have descendants to build on Spark"
    assert descendants <= by_dbt

    mismatches = []
    with connect(built.warehouse, read_only=True) as duck:
        for unique_id in sorted(all_models):
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


def test_a_modality_never_landed_builds_empty_on_spark(built: Built, tmp_path: Path) -> None:
    """A cohort without imaging: its bronze sources are empty views of the declared columns.

    Spark cannot infer a table from a folder without files; the source YAML's columns stand in,
    as on DuckDB, and the models over them build and pass their tests with no rows. Once the
    modality lands, the next build registers the real table in place of the stand-in.
    """
    spark_lake = tmp_path / "spark_lakehouse"
    mirror_bronze_as_parquet(built.lakehouse, spark_lake)
    missing = ("imaging_instances", "imaging_features")
    for table in missing:
        shutil.move(spark_lake / "bronze" / table, tmp_path / table)
    env = {**os.environ, "LAKEHOUSE_ROOT": str(spark_lake)}
    env.pop("MMLAKE_TARGET", None)
    env.pop("MMLAKE_PSEUDONYM_KEY", None)
    # Cautious: only the tests wholly inside the selection (not relationships to other models).
    select = ["--select", "+stg_imaging__instances", "+stg_imaging__features"]
    select += ["--indirect-selection", "cautious"]
    args = [sys.executable, "-m", "mmlake.dbt_runner", "build", "--target", "spark", *select]

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    for table in missing:
        assert f"bronze.{table}: nothing landed at" in done.stdout
    assert _spark_rows(spark_lake, "silver", "stg_imaging__instances") == 0

    for table in missing:  # the modality lands: the stand-ins give way to the real tables
        shutil.move(tmp_path / table, spark_lake / "bronze" / table)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "nothing landed at" not in done.stdout
    with connect(built.warehouse, read_only=True) as duck:
        local = duck.execute("select count(*) from silver.stg_imaging__instances").fetchone()[0]
    assert local > 0
    assert _spark_rows(spark_lake, "silver", "stg_imaging__instances") == local
