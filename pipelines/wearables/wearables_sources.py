"""Inputs of the wearables pipeline: the landing lines parsed, the register, the seeds, the rules.

Helpers of ``wearables_pipeline.py`` (the definition file), kept apart so that file reads as the
pipeline: which datasets exist and how each is derived. Nothing here declares a dataset, so the
module is never listed as a pipeline library (``spark-pipeline.yml`` globs only the definition
file; the Databricks bundle names only it); the definition imports it from its own folder.
Reading is done the way ingestion and the dbt staging models do it, so both paths agree:
the payload schema, the arrival instant in the file name, the pseudonym of an identifier, the
typed reference seeds and the expectation rules of ``seeds/wearables``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pyspark.sql import functions as sf

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DEFAULT_SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "wearables"

# The drop's closing instant in its file name (20240501T140000Z.jsonl), as in ingestion.
_ARRIVAL = r"(\d{4})-?(\d{2})-?(\d{2})T(\d{2})[-:]?(\d{2})[-:]?(\d{2})(?:\.\d+)?Z"
_STRINGS = ("event_id", "device_id", "device_model", "user_id", "metric", "unit", "value")
_TIMES = ("start_time", "end_time", "recorded_at")
# Every known field is read as its JSON text: a number, a string or a boolean alike.
_PAYLOAD = (
    "struct<"
    + ",".join(f"{name}:string" for name in (*_STRINGS, *_TIMES, "firmware_version", "battery_pct"))
    + ">"
)
SEED_SCHEMAS = {
    "unit_conversions": "metric string, unit string, canonical_unit string, "
    "factor double, offset double",
    "wearables_plausible_ranges": "metric string, canonical_unit string, range_basis string, "
    "min_value double, max_value double, rationale string",
}


class Expectation(NamedTuple):
    """One row of the expectations seed (a NamedTuple: immutable, and no ``sys.modules`` entry
    needed, whichever way the pipeline runtime loads the files)."""

    rule: str
    column_name: str
    condition_sql: str
    action: str  # warn | drop | fail
    checked_in_silver: bool


def load_expectations(seeds: Path = DEFAULT_SEEDS) -> list[Expectation]:
    """The rules, read with ``csv`` when the graph is defined (no Spark job at import)."""
    with (seeds / "wearables_expectations.csv").open(newline="", encoding="utf-8") as handle:
        return [
            Expectation(
                row["rule"],
                row["column_name"],
                row["condition_sql"],
                row["action"],
                row["checked_in_silver"].strip().lower() == "true",
            )
            for row in csv.DictReader(handle)
        ]


def pseudonymize(column: Column, key: str) -> Column:
    """``macros/privacy/pseudonymize.sql``: sha256 of ``key:UPPER(TRIM(value))``, hex."""
    return sf.sha2(sf.concat(sf.lit(key + ":"), sf.upper(sf.trim(column))), 256)


def parse_landing(lines: DataFrame) -> DataFrame:
    """Landing lines (``value``, ``_metadata``) to typed events with their lineage."""
    payload = sf.from_json(sf.col("value"), _PAYLOAD)
    name = sf.regexp_extract(sf.col("_metadata.file_path"), r"[^/]+$", 0)
    stamp = sf.concat(*(sf.regexp_extract(name, _ARRIVAL, g) for g in range(1, 7)))
    return (
        lines.where(sf.trim(sf.col("value")) != "")
        .select(
            sf.col("value").alias("_raw"),
            payload.alias("p"),
            sf.col("_metadata.file_path").alias("_source_file"),
            sf.sha2(sf.col("value"), 256).alias("_record_hash"),
            sf.try_to_timestamp(stamp, sf.lit("yyyyMMddHHmmss")).alias("arrival_time"),
            sf.current_timestamp().alias("_ingested_at"),
        )
        .select(
            *(sf.col(f"p.{field}").alias(field) for field in _STRINGS if field != "value"),
            sf.col("p.value").alias("value_as_sent"),
            _number(sf.col("p.value")).alias("value_num"),
            *(sf.col(f"p.{t}").alias(f"{t}_as_sent") for t in _TIMES),
            *(sf.try_to_timestamp(sf.col(f"p.{t}")).alias(t) for t in _TIMES),
            sf.col("p.firmware_version").alias("firmware_version"),
            sf.col("p.battery_pct").alias("battery_pct_as_sent"),
            _number(sf.col("p.battery_pct")).alias("battery_pct"),
            "arrival_time",
            "_ingested_at",
            "_source_file",
            "_record_hash",
            "_raw",
        )
    )


def read_landing(spark: SparkSession, landing: str, streaming: bool = True) -> DataFrame:
    """The drops under ``landing`` (one folder per day), as a stream or as a batch."""
    reader = spark.readStream if streaming else spark.read
    lines = reader.format("text").load(f"{landing.rstrip('/')}/*/*.jsonl")
    return parse_landing(lines.select("value", "_metadata"))


def read_enrollment(spark: SparkSession, path: str, key: str) -> DataFrame:
    """The register (``stg_wearables__enrollment``): latest line per device and start day."""
    raw = (
        spark.read.option("header", True)
        .schema(
            "device_id string, device_model string, patient_mrn string, "
            "enrolled_on string, withdrawn_on string"
        )
        .csv(path)
    )
    valid = raw.where(
        (sf.trim("device_id") != "")
        & (sf.trim("patient_mrn") != "")
        & sf.try_to_date("enrolled_on").isNotNull()
    )
    return valid.dropDuplicates(["device_id", "enrolled_on"]).select(
        pseudonymize(sf.col("device_id"), key).alias("device_key"),
        pseudonymize(sf.col("patient_mrn"), key).alias("patient_key"),
        "device_model",
        sf.try_to_date("enrolled_on").alias("enrolled_on"),
        sf.try_to_date("withdrawn_on").alias("withdrawn_on"),
    )


def read_seed(spark: SparkSession, seeds: Path, name: str) -> DataFrame:
    """A reference seed, typed as ``_wearables__seeds.yml`` pins it (no schema inference:
    inferring would run a Spark job while the graph is being defined)."""
    return (
        spark.read.option("header", True).schema(SEED_SCHEMAS[name]).csv(str(seeds / f"{name}.csv"))
    )


def _number(text: Column) -> Column:
    """The text as a finite double, else null (``number_from_text`` of the ingestion)."""
    numeric = sf.when(text.rlike(r"^[0-9+\-.]") & ~text.contains("_"), text.try_cast("double"))
    return sf.when(~sf.isnan(numeric) & (sf.abs(numeric) != float("inf")), numeric)
