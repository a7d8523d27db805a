"""ML tasks of the bundle: the same `mmlake train` / `mmlake score` code on a Databricks cluster.

``ml`` reads gold as Delta tables under ``<lakehouse>/gold/<table>`` with DuckDB (a pinned
version is what makes a training run reproducible), while on Databricks gold is a set of Unity
Catalog tables. So each task first snapshots the gold tables ``ml`` reads into a Delta table
under the driver-local ``LAKEHOUSE_ROOT``, recording the Unity Catalog table and version it
came from in the commit metadata, and then calls the unchanged train or score function.
MLflow logs to the workspace and registers in Unity Catalog through the environment
(MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI, MMLAKE_UC_MODEL_NAME; the job cluster sets them).
Scoring publishes ``risk_scores`` back to ``<catalog>.<schema>.risk_scores``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The gold tables ml.data reads (TRAINING_TABLE, SUBGROUP_TABLE).
GOLD_INPUTS = ("patient_multimodal", "cohort_subgroups")
RISK_SCORES = "risk_scores"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("train", "score"))
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", default="gold")
    parser.add_argument("--lakehouse", type=Path, default=None, help="default: $LAKEHOUSE_ROOT")
    return parser.parse_args(list(argv))


def quoted(*parts: str) -> str:
    return ".".join(f"`{part.replace('`', '``')}`" for part in parts)


def snapshot_gold(spark: Any, catalog: str, schema: str, lakehouse: Path) -> dict[str, int]:
    """Copy each gold input into ``<lakehouse>/gold/<table>``; returns the source versions."""
    from deltalake import CommitProperties, write_deltalake

    versions: dict[str, int] = {}
    for table in GOLD_INPUTS:
        name = quoted(catalog, schema, table)
        version = spark.sql(f"describe history {name} limit 1").collect()[0]["version"]
        rows = spark.read.option("versionAsOf", version).table(name).toArrow()
        write_deltalake(
            str(lakehouse / "gold" / table),
            rows,
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=CommitProperties(
                custom_metadata={"mmlake.source": f"{catalog}.{schema}.{table}@v{version}"}
            ),
        )
        versions[table] = int(version)
    return versions


def publish_scores(spark: Any, lakehouse: Path, catalog: str, schema: str) -> int:
    """Append this run's scores to the Unity Catalog table, replacing a re-run's rows."""
    from mmlake.duckdb_ext import connect

    con = connect()
    try:
        frame = con.sql(
            "select * from delta_scan(?)", params=[str(lakehouse / "gold" / RISK_SCORES)]
        ).df()
    finally:
        con.close()
    if frame.empty:
        return 0
    target = quoted(catalog, schema, RISK_SCORES)
    if spark.catalog.tableExists(f"{catalog}.{schema}.{RISK_SCORES}"):
        for run_id, version in frame[["train_run_id", "model_version"]].drop_duplicates().values:
            spark.sql(
                f"delete from {target} where train_run_id = :run and model_version = :version",
                args={"run": str(run_id), "version": str(version)},
            )
    spark.createDataFrame(frame).write.format("delta").mode("append").option(
        "mergeSchema", "true"
    ).saveAsTable(target)
    return len(frame)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    from pyspark.sql import SparkSession

    from mmlake import paths

    spark = SparkSession.builder.getOrCreate()
    lakehouse = paths.lakehouse_root(args.lakehouse)
    sources = snapshot_gold(spark, args.catalog, args.schema, lakehouse)
    print(f"gold snapshot from Unity Catalog: {sources}")
    if args.action == "train":
        from ml.train import FUSION, TrainConfig, train

        result = train(lakehouse, TrainConfig(strategies=FUSION))
        print(f"training run {result.run_id}; champion {result.champion} v{result.model_version}")
    else:
        from ml.score import score

        scored = score(lakehouse, None, None)
        rows = publish_scores(spark, lakehouse, args.catalog, args.schema)
        print(
            f"scored {scored.rows} patients with model version {scored.model_version}; "
            f"published {rows} rows to {args.catalog}.{args.schema}.{RISK_SCORES}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
