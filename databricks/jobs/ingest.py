"""Ingestion task of the bundle: `mmlake ingest --engine spark` for one modality, then publish.

The task runs on a job cluster, so ``python_ingest`` finds the cluster's active SparkSession
(Glow registered when the genomics task has the Maven library) and lands Delta tables under
``<lakehouse>/bronze/<table>`` exactly as on a laptop, with the same ledger and quarantine.
dbt on Databricks reads bronze as Unity Catalog tables (``<catalog>.bronze.<identifier>``,
the identifiers of models/bronze/*), so the landed tables of the modality, the ledger and the
quarantine are then copied into managed tables of that name. Copying (rather than external
tables over the folder) keeps the landing volume a plain working area: volumes cannot hold
table locations.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Tables every modality writes into (the ledger and the quarantine), published after each run.
SHARED_TABLES = ("_ingest_log", "_quarantine")
MODALITIES = ("ehr", "genomics", "imaging", "notes", "wearables")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="raw landing folder")
    parser.add_argument("--lakehouse", type=Path, required=True, help="ingest working lakehouse")
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", default="bronze")
    parser.add_argument("--modality", choices=(*MODALITIES, "all"), default="all")
    return parser.parse_args(list(argv))


def landed_tables(bronze: Path, modality: str) -> list[str]:
    """Delta tables under ``bronze`` that ``modality`` writes, plus the shared ones.

    Table names start with their modality (``ehr_patients``, ``notes``); which tables exist
    depends on the data, so the folder is listed rather than a fixed list kept here.
    """
    prefixes = MODALITIES if modality == "all" else (modality,)
    names = [
        path.name
        for path in sorted(bronze.iterdir())
        if (path / "_delta_log").is_dir()
        and (path.name in SHARED_TABLES or path.name.startswith(prefixes))
    ]
    return names


def quoted(*parts: str) -> str:
    return ".".join(f"`{part.replace('`', '``')}`" for part in parts)


def publish(spark: Any, bronze: Path, tables: Sequence[str], catalog: str, schema: str) -> None:
    """Replace each ``<catalog>.<schema>.<table>`` with the landed Delta table's current rows."""
    spark.sql(f"create schema if not exists {quoted(catalog, schema)}")
    for table in tables:
        (
            spark.read.format("delta")
            .load(str(bronze / table))
            .write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")
            .saveAsTable(quoted(catalog, schema, table))
        )


def main(argv: Sequence[str]) -> int:
    """Land and publish; quarantined records do not fail the task.

    `mmlake ingest` exits 3 when records were quarantined; a job task would then fail and stop
    the downstream dbt build, although quarantining is the expected handling of bad records
    (they are in bronze._quarantine, and dbt's accounting tests read them).
    """
    args = parse_args(argv)
    from pyspark.sql import SparkSession

    from python_ingest.runner import ingest_sources, summarize_ingest

    spark = SparkSession.builder.getOrCreate()
    lakehouse = args.lakehouse
    summaries = ingest_sources(
        args.source, args.modality, lakehouse, progress=False, engine="spark"
    )
    summarize_ingest(summaries, lakehouse)
    bronze = lakehouse / "bronze"
    publish(spark, bronze, landed_tables(bronze, args.modality), args.catalog, args.schema)
    quarantined = sum(s.records_quarantined for s in summaries)
    print(f"published {args.modality} to {args.catalog}.{args.schema}; quarantined {quarantined}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
