"""Wearables as a Spark Declarative Pipeline: landing folder -> events -> daily windows.

The same data path as ``mmlake ingest`` + the dbt models ``stg_wearables__events`` and
``int_wearables__daily`` (docs/wearables.md), for teams whose device feed lands in cloud storage
and runs on Spark: a streaming table picks up each new hourly drop exactly once (the pipeline's
checkpoint is what the ingest log is locally), and two materialized views recompute the
de-duplicated events and the daily windows from it.

Datasets (``spark-pipeline.yml`` sets the configuration keys below):

* ``wearables_landing`` (streaming table): every non-blank line of
  ``<landing>/YYYY-MM-DD/*.jsonl``, kept whole (``_raw``) next to the known fields, so a field a
  vendor adds later (schema evolution) is never lost, and a line that is not JSON stays visible;
* ``wearables_enrollment`` (materialized view): the device register, pseudonymised;
* ``wearables_events`` (materialized view): first arrival per ``event_id``, linked to the
  patient, in canonical units, plausibility flagged, with the expectations applied;
* ``wearables_daily`` (materialized view): per patient, day and metric, like
  ``int_wearables__daily``.

Expectations are data (``seeds/wearables/wearables_expectations.csv``), so the rules are the
same here, on Databricks and in the dbt tests on silver. ``pyspark.pipelines`` 4.2 has no
``expect*`` API (it is Databricks-only): when ``dp.expect_all_or_drop`` exists the rules are
attached as decorators, otherwise ``apply_expectations`` does the same in the query (drop:
filtered out; fail: the run errors; warn: the rule's name in ``expectations_warned``).

The transformations are plain functions of DataFrames, so they also run, and are tested, on an
ordinary SparkSession (tests/pipelines/test_wearables_pipeline.py). Reading the inputs (payload
schema, register, seeds, expectation rules) is in the sibling ``wearables_sources.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as sf
from pyspark.sql.window import Window

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# The helpers sit next to this file, which is not a package. `spark-pipelines run` execs it by
# path (in the tests through a symlink, hence resolve()) without touching sys.path, and Databricks
# adds only a pipeline's root folder, which this bundle does not set; so the folder is added here.
# Both runtimes have the whole folder (the bundle syncs the repository), while the spec's glob and
# the bundle's library list name only this file, the one that declares datasets.
if "__file__" in globals():
    _HERE = str(Path(__file__).resolve().parent)
    if _HERE not in sys.path:
        sys.path.insert(0, _HERE)

from wearables_sources import (
    DEFAULT_SEEDS,
    Expectation,
    load_expectations,
    pseudonymize,
    read_enrollment,
    read_landing,
    read_seed,
)

CONF_LANDING = "mmlake.wearables.landing"
CONF_ENROLLMENT = "mmlake.wearables.enrollment"
CONF_SEEDS = "mmlake.wearables.seeds"
CONF_KEY = "spark.mmlake.pseudonym_key"  # the same session conf the dbt spark target uses

_SLEEP_STAGES = {"wake": "wake", "awake": "wake", "light": "light", "core": "light"}
_SLEEP_STAGES |= {"deep": "deep", "rem": "rem"}
# Counted for the morning the wearer wakes up.
_NIGHTLY = ("sleep_stage", "spo2")


def clean_events(
    landing: DataFrame, enrollment: DataFrame, units: DataFrame, ranges: DataFrame, key: str
) -> DataFrame:
    """``stg_wearables__events`` on a full load, before the expectations are applied.

    The first arrival of a re-sent event wins; an event belongs to the enrollment period of
    its device that contains its UTC day (the later enrollment when two overlap). Every
    watermark flag is false: a materialized view recomputes everything, like a full refresh.
    """
    first = Window.partitionBy("event_id").orderBy(
        sf.col("arrival_time").asc_nulls_last(), "_ingested_at", "_source_file", "_record_hash"
    )
    stage = sf.lower(sf.trim("value_as_sent"))
    stage_label = sf.when(stage.isin(*_SLEEP_STAGES), sf.element_at(_map(_SLEEP_STAGES), stage))
    events = (
        landing.withColumn("_arrival_rank", sf.row_number().over(first))
        .where("_arrival_rank = 1")
        .withColumn("metric", sf.lower(sf.trim("metric")))
        .withColumn("sleep_stage", stage_label)
        .withColumn("device_key", pseudonymize(sf.col("device_id"), key))
        .withColumn("event_day", sf.to_date("start_time"))
    )
    # Columns by name only: a pipeline flow is analysed on the server, where DataFrame-bound
    # references (``enrollment.device_key``) to another dataset of the graph do not resolve.
    register = enrollment.select(
        sf.col("device_key").alias("_e_device_key"), "patient_key", "enrolled_on", "withdrawn_on"
    )
    c = sf.col
    period = (
        (c("device_key") == c("_e_device_key"))
        & (c("event_day") >= c("enrolled_on"))
        & (c("withdrawn_on").isNull() | (c("event_day") < c("withdrawn_on")))
    )
    latest = Window.partitionBy("event_id").orderBy(sf.col("enrolled_on").desc_nulls_last())
    linked = (
        events.join(register, period, "left")
        .withColumn("_enrollment_rank", sf.row_number().over(latest))
        .where("_enrollment_rank = 1")
    )
    units = units.select(
        sf.lower("metric").alias("_u_metric"),
        sf.lower("unit").alias("_u_unit"),
        "canonical_unit",
        "factor",
        "offset",
    )
    ranges = ranges.select(
        sf.lower("metric").alias("_r_metric"), "range_basis", "min_value", "max_value"
    )
    unit_match = (sf.col("metric") == sf.col("_u_metric")) & (
        sf.lower(sf.trim("unit")) == sf.col("_u_unit")
    )
    shifted = sf.to_date(sf.col("start_time") + sf.expr("interval 12 hours"))
    normal = (
        linked.join(units, unit_match, "left")
        .join(ranges, sf.col("metric") == sf.col("_r_metric"), "left")
        .withColumn("canonical_value", sf.col("value_num") * sf.col("factor") + sf.col("offset"))
        .withColumn(
            "duration_minutes",
            (sf.unix_timestamp("end_time") - sf.unix_timestamp("start_time")) / 60.0,
        )
        .withColumn(
            "activity_date",
            sf.when(sf.col("metric").isin(*_NIGHTLY), shifted).otherwise(sf.to_date("start_time")),
        )
    )
    return (
        normal.withColumn("implausible_reason", _implausible_reason())
        .select(
            "event_id",
            "patient_key",
            "device_key",
            "device_model",
            "metric",
            "sleep_stage",
            "canonical_value",
            "canonical_unit",
            "value_as_sent",
            "value_num",
            "unit",
            "start_time",
            "end_time",
            "recorded_at",
            "start_time_as_sent",
            "end_time_as_sent",
            "recorded_at_as_sent",
            "duration_minutes",
            "activity_date",
            "firmware_version",
            "battery_pct",
            "battery_pct_as_sent",
            "arrival_time",
            "_ingested_at",
            "_source_file",
            "_record_hash",
            "_raw",
            sf.col("implausible_reason").isNull().alias("is_plausible"),
            "implausible_reason",
            sf.lit(False).alias("beyond_watermark"),
        )
        .withColumnRenamed("unit", "unit_as_sent")
    )


def apply_expectations(events: DataFrame, rules: list[Expectation]) -> DataFrame:
    """The rules in the query, where the engine has no expectations: drop, fail, warn.

    A condition that is null counts as failed: the seed's conditions are written never to be.
    """

    def holds(rule: Expectation) -> Column:
        return sf.coalesce(sf.expr(rule.condition_sql), sf.lit(False))

    for rule in (r for r in rules if r.action == "drop"):
        events = events.where(holds(rule))
    for rule in (r for r in rules if r.action == "fail"):
        message = f"expectation {rule.rule} failed: {rule.condition_sql}"
        events = events.where(sf.when(~holds(rule), sf.raise_error(sf.lit(message))).isNull())
    warned = [sf.when(~holds(r), sf.lit(r.rule)) for r in rules if r.action == "warn"]
    flags = sf.filter(sf.array(*warned), lambda x: x.isNotNull()) if warned else sf.array()
    return events.withColumn("expectations_warned", flags.cast("array<string>"))


def daily(events: DataFrame) -> DataFrame:
    """``int_wearables__daily``: per patient, day and metric, from the plausible events."""
    ok = events.where("is_plausible and not beyond_watermark")
    keys = ("patient_key", "activity_date")
    asleep = sf.when(sf.col("sleep_stage") != "wake", sf.col("duration_minutes")).otherwise(0)
    parts = {
        "heart_rate": (
            ("resting_heart_rate", sf.min("canonical_value"), "bpm"),
            ("heart_rate_mean", sf.avg("canonical_value"), "bpm"),
            ("wear_minutes", sf.sum("duration_minutes"), "min"),
        ),
        "steps": (("steps_total", sf.sum("canonical_value"), "count"),),
        "spo2": (
            ("spo2_min", sf.min("canonical_value"), "%"),
            ("spo2_mean", sf.avg("canonical_value"), "%"),
        ),
        "sleep_stage": (("sleep_minutes", sf.sum(asleep), "min"),),
    }
    frames = []
    for metric, outputs in parts.items():
        grouped = ok.where(sf.col("metric") == metric).groupBy(*keys)
        aggregated = grouped.agg(
            sf.count(sf.lit(1)).alias("n_events"),
            sf.max("_ingested_at").alias("last_ingested_at"),
            *(expr.alias(name) for name, expr, _ in outputs),
        )
        for name, _, unit in outputs:
            frames.append(
                aggregated.select(
                    *keys,
                    sf.lit(name).alias("metric"),
                    sf.col(name).cast("double").alias("metric_value"),
                    sf.lit(unit).alias("unit"),
                    sf.col("n_events").cast("int").alias("n_events"),
                    "last_ingested_at",
                )
            )
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def define(spark: SparkSession, dp: Any) -> None:
    """Declare the pipeline's datasets on ``spark`` through the ``pyspark.pipelines`` module."""
    landing = spark.conf.get(CONF_LANDING)
    enrollment_path = spark.conf.get(CONF_ENROLLMENT)
    seeds = Path(spark.conf.get(CONF_SEEDS, str(DEFAULT_SEEDS)))
    key = spark.conf.get(CONF_KEY)
    rules = load_expectations(seeds)

    def seed(name: str) -> DataFrame:
        return read_seed(spark, seeds, name)

    @dp.table(name="wearables_landing", comment="Every landed line, once (streaming).")
    def wearables_landing() -> DataFrame:
        return read_landing(spark, landing, streaming=True)

    @dp.materialized_view(name="wearables_enrollment", comment="Device register, pseudonymised.")
    def wearables_enrollment() -> DataFrame:
        return read_enrollment(spark, enrollment_path, key)

    def wearables_events() -> DataFrame:
        events = clean_events(
            spark.read.table("wearables_landing"),
            spark.read.table("wearables_enrollment"),
            seed("unit_conversions"),
            seed("wearables_plausible_ranges"),
            key,
        )
        if hasattr(dp, "expect_all_or_drop"):  # Databricks: rules recorded in the event log
            return events.withColumn("expectations_warned", sf.array().cast("array<string>"))
        return apply_expectations(events, rules)

    for decorate in _databricks_expectations(dp, rules):
        wearables_events = decorate(wearables_events)
    dp.materialized_view(
        name="wearables_events", comment="De-duplicated, linked, normalised events."
    )(wearables_events)

    @dp.materialized_view(name="wearables_daily", comment="Daily windows per patient, metric.")
    def wearables_daily() -> DataFrame:
        return daily(spark.read.table("wearables_events"))


def _databricks_expectations(dp: Any, rules: list[Expectation]) -> list[Callable]:
    """``expect_all*`` decorators where the runtime has them (Databricks), else none."""
    if not hasattr(dp, "expect_all_or_drop"):
        return []
    by_action = {"warn": "expect_all", "drop": "expect_all_or_drop", "fail": "expect_all_or_fail"}
    decorators = []
    for action, api in by_action.items():
        chosen = {r.rule: r.condition_sql for r in rules if r.action == action}
        if chosen:
            decorators.append(getattr(dp, api)(chosen))
    return decorators


def _implausible_reason() -> Column:
    """The reasons of ``stg_wearables__events``, in the same order."""
    c, basis = sf.col, sf.col("range_basis")
    per_minute = c("canonical_value") / c("duration_minutes")
    below = (
        ((basis == "value") & (c("canonical_value") < c("min_value")))
        | ((basis == "per_minute") & (per_minute < c("min_value")))
        | ((basis == "duration_minutes") & (c("duration_minutes") < c("min_value")))
    )
    above = (
        ((basis == "value") & (c("canonical_value") > c("max_value")))
        | ((basis == "per_minute") & (per_minute > c("max_value")))
        | ((basis == "duration_minutes") & (c("duration_minutes") > c("max_value")))
    )
    return (
        sf.when(c("canonical_unit").isNull(), "unknown_unit")
        .when(c("end_time") < c("start_time"), "end_before_start")
        .when((basis == "per_minute") & (c("duration_minutes") <= 0), "zero_duration")
        .when(below, "below_plausible_range")
        .when(above, "above_plausible_range")
    )


def _map(mapping: dict[str, str]) -> Column:
    return sf.create_map(*(sf.lit(x) for pair in mapping.items() for x in pair))


_spark = globals().get("spark")  # injected by `spark-pipelines run` and by Databricks
if _spark is not None:
    from pyspark import pipelines as dp

    define(_spark, dp)
