"""The wearables Spark Declarative Pipeline against the local path, on the same landing folder.

One small cohort (wearables only) is generated, landed by ``mmlake ingest`` and built by dbt on
the local target (``stg_wearables__events``, ``int_wearables__daily``, the expectation tests).
The pipeline definition is then checked three ways: the dataset graph it declares (no Spark),
its transformation functions on a plain local SparkSession, and a real ``spark-pipelines run``
(a Spark Connect server started by the CLI). Both Spark runs must give the local daily windows
exactly: the same rows per day and, per patient, day and metric, the same value and event count.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml

from mmlake.dbt_runner import run_dbt
from mmlake.duckdb_ext import connect
from mmlake.generate.runner import GenerationConfig, generate_cohort
from mmlake.paths import project_root
from mmlake.pseudonym import pseudonym_key
from python_ingest.runner import ingest_sources

PIPELINE = project_root() / "pipelines" / "wearables"
SEEDS = project_root() / "seeds" / "wearables"
KEYS = ["patient_key", "activity_date", "metric"]
# Extra PYTHONPATH for the CLI when the venv lacks pyspark's `pipelines` extra (grpcio, ...).
DEPS_ENV = "MMLAKE_SDP_PYTHONPATH"


def load_definition() -> ModuleType:
    """The definition file as a module (it lives outside any package, like on Databricks)."""
    spec = importlib.util.spec_from_file_location(
        "wearables_pipeline", PIPELINE / "wearables_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


wp = load_definition()


class Cohort(SimpleNamespace):
    raw: Path
    lakehouse: Path
    key: str
    local_daily: pd.DataFrame
    local_events: int


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    base = tmp_path_factory.mktemp("sdp")
    raw, lakehouse = base / "raw", base / "lakehouse"
    generate_cohort(GenerationConfig(patients=60, seed=11, modalities=("ehr", "wearables")), raw)
    ingest_sources(raw / "wearables", "wearables", lakehouse, progress=False)
    run_dbt(
        ["build", "--select", "+int_wearables__daily", "wearables_expectations+"],
        target="local",
        lakehouse=lakehouse,
    )
    with connect(lakehouse / "warehouse.duckdb", read_only=True) as conn:
        daily = conn.execute(
            "select patient_key, activity_date, metric, metric_value, n_events"
            " from silver.int_wearables__daily"
        ).df()
        events = conn.execute("select count(*) from silver.stg_wearables__events").fetchone()
    assert len(daily) > 1000, "the cohort should have a few thousand patient-days"
    return Cohort(
        raw=raw,
        lakehouse=lakehouse,
        key=pseudonym_key(lakehouse),
        local_daily=daily,
        local_events=events[0],
    )


def assert_same_daily(pipeline: pd.DataFrame, local: pd.DataFrame) -> None:
    """Equal rows per day, and per patient/day/metric equal values and event counts."""
    for frame in (pipeline, local):
        frame["activity_date"] = pd.to_datetime(frame["activity_date"]).dt.strftime("%Y-%m-%d")
    per_day = [f.groupby("activity_date").size() for f in (pipeline, local)]
    pd.testing.assert_series_equal(per_day[0], per_day[1], check_names=False)
    joined = pipeline.merge(
        local, on=KEYS, how="outer", suffixes=("_sdp", "_local"), indicator=True
    )
    assert (joined["_merge"] == "both").all(), joined[joined["_merge"] != "both"].head()
    assert (joined["n_events_sdp"] == joined["n_events_local"]).all()
    gap = (joined["metric_value_sdp"] - joined["metric_value_local"]).abs()
    assert (gap <= 1e-9 * joined["metric_value_local"].abs().clip(lower=1)).all()


class FakePipelines:
    """Records what a definition declares, standing in for ``pyspark.pipelines``."""

    def __init__(self, with_expectations: bool) -> None:
        self.datasets: dict[str, str] = {}
        self.expectations: dict[str, dict[str, str]] = {}
        if with_expectations:
            for api in ("expect_all", "expect_all_or_drop", "expect_all_or_fail"):
                setattr(self, api, self._expect(api))

    def _expect(self, api: str) -> Any:
        def decorator_factory(rules: dict[str, str]) -> Any:
            self.expectations[api] = rules
            return lambda fn: fn

        return decorator_factory

    def _declare(self, kind: str) -> Any:
        def decorator_factory(name: str, comment: str = "") -> Any:
            assert comment, f"{name} has no comment"
            self.datasets[name] = kind
            return lambda fn: fn

        return decorator_factory

    def __getattr__(self, name: str) -> Any:
        if name in ("table", "materialized_view"):
            return self._declare(name)
        raise AttributeError(name)


def fake_spark(tmp: Path) -> Any:
    conf = {
        wp.CONF_LANDING: str(tmp),
        wp.CONF_ENROLLMENT: str(tmp / "enrollment.csv"),
        wp.CONF_KEY: "k",
    }
    return SimpleNamespace(conf=SimpleNamespace(get=lambda k, d=None: conf.get(k, d)))


@pytest.mark.parametrize("databricks", [False, True])
def test_definition_declares_the_graph(tmp_path: Path, databricks: bool) -> None:
    dp = FakePipelines(with_expectations=databricks)
    wp.define(fake_spark(tmp_path), dp)
    assert dp.datasets == {
        "wearables_landing": "table",
        "wearables_enrollment": "materialized_view",
        "wearables_events": "materialized_view",
        "wearables_daily": "materialized_view",
    }
    rules = wp.load_expectations(SEEDS)
    assert {r.action for r in rules} == {"warn", "drop", "fail"}
    if databricks:  # every rule attached, under the API of its action
        api = {"warn": "expect_all", "drop": "expect_all_or_drop", "fail": "expect_all_or_fail"}
        for rule in rules:
            assert dp.expectations[api[rule.action]][rule.rule] == rule.condition_sql
    else:
        assert dp.expectations == {}


def test_spec_names_the_definition() -> None:
    spec = yaml.safe_load((PIPELINE / "spark-pipeline.yml").read_text(encoding="utf-8"))
    assert {"name", "storage", "configuration", "libraries"} <= spec.keys()
    assert spec["libraries"] == [{"glob": {"include": "wearables_pipeline.py"}}]
    for key in (wp.CONF_LANDING, wp.CONF_ENROLLMENT, wp.CONF_SEEDS):
        assert key in spec["configuration"]


def test_transformations_on_a_plain_session_match_local(cohort: Cohort) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        landing = wp.read_landing(spark, str(cohort.raw / "wearables" / "landing"), streaming=False)
        register = wp.read_enrollment(
            spark, str(cohort.raw / "wearables" / "enrollment.csv"), cohort.key
        )
        events = wp.clean_events(
            landing,
            register,
            wp.read_seed(spark, SEEDS, "unit_conversions"),
            wp.read_seed(spark, SEEDS, "wearables_plausible_ranges"),
            cohort.key,
        )
        events = wp.apply_expectations(events, wp.load_expectations(SEEDS)).cache()
        assert events.count() == cohort.local_events
        daily = wp.daily(events).select(*KEYS, "metric_value", "n_events").toPandas()
    finally:
        spark.stop()
    assert_same_daily(daily, cohort.local_daily.copy())


def cli_environment() -> dict[str, str] | None:
    """Environment for ``spark-pipelines``, or None when its Spark Connect client can't load."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYSPARK_PYTHON"] = sys.executable
    extra = os.environ.get(DEPS_ENV)
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
    probe = subprocess.run(
        [sys.executable, "-c", "import grpc, grpc_status, google.rpc"], env=env, check=False
    )
    return env if probe.returncode == 0 else None


def test_spark_pipelines_run_matches_local(cohort: Cohort, tmp_path: Path) -> None:
    env = cli_environment()
    if env is None:
        pytest.skip(
            "spark-pipelines needs pyspark's `pipelines` extra (grpcio, grpcio-status, "
            f"googleapis-common-protos): install it or point {DEPS_ENV} at it"
        )
    (tmp_path / "wearables_pipeline.py").symlink_to(PIPELINE / "wearables_pipeline.py")
    spec = yaml.safe_load((PIPELINE / "spark-pipeline.yml").read_text(encoding="utf-8"))
    spec["storage"] = (tmp_path / "storage").as_uri()
    spec["configuration"].update(
        {
            wp.CONF_LANDING: str(cohort.raw / "wearables" / "landing"),
            wp.CONF_ENROLLMENT: str(cohort.raw / "wearables" / "enrollment.csv"),
            wp.CONF_SEEDS: str(SEEDS),
            wp.CONF_KEY: cohort.key,
        }
    )
    (tmp_path / "spark-pipeline.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    warehouse = tmp_path / "warehouse"
    command = [
        shutil.which("spark-pipelines", path=env["PATH"]) or "spark-pipelines",
        "--remote",
        "local[2]",
        "--conf",
        f"spark.sql.warehouse.dir={warehouse}",
        "--conf",
        "spark.ui.enabled=false",
        "run",
        "--spec",
        str(tmp_path / "spark-pipeline.yml"),
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "Run is COMPLETED" in done.stdout, (
        done.stdout[-4000:] + done.stderr[-4000:]
    )
    daily = duckdb.sql(
        f"select {', '.join(KEYS)}, metric_value, n_events"
        f" from read_parquet('{warehouse / 'wearables_daily'}/*.parquet')"
    ).df()
    events = duckdb.sql(
        f"select count(*) from read_parquet('{warehouse / 'wearables_events'}/*.parquet')"
    )
    assert events.fetchone()[0] == cohort.local_events
    assert_same_daily(daily, cohort.local_daily.copy())
