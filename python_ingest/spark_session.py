"""The Spark session the ``spark`` ingestion engine runs on.

Inside a Spark application (``spark-submit``, a Databricks notebook, a test that started one)
the active session is used as it is. Otherwise a local session is started with the settings of
``profiles.yml``'s ``spark`` target, so that dbt and the ingestion share one definition of the
local session: ``local[2]``, no UI, UTC, and every path Spark, Hive or Derby would otherwise
create in the working directory (``spark-warehouse/``, ``metastore_db/``, ``derby.log``) pinned
under ``<lakehouse>/spark/``. The profile's values are dbt Jinja (``env_var('LAKEHOUSE_ROOT',
...)``); they are rendered here with ``LAKEHOUSE_ROOT`` set to the lakehouse being ingested.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import yaml

from mmlake.paths import LAKEHOUSE_ENV, project_root

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PROFILE = "multimodal_lakehouse"
TARGET = "spark"
APP_NAME = "mmlake-ingest"

# Session settings the ingestion needs on any session, local or not (runtime SQL confs).
# Spark writes parquet timestamps as legacy INT96 by default; micros keep the UTC instants
# (and the TIMESTAMP_NTZ wall-clock times) typed as the readers produced them.
RUNTIME_CONF = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


def profile_settings(lakehouse: Path, profiles: Path | None = None) -> dict[str, str]:
    """``server_side_parameters`` of the profile's ``spark`` target, rendered for ``lakehouse``.

    ``env_var(name, default)`` resolves ``LAKEHOUSE_ROOT`` to ``lakehouse`` (absolute) and any
    other name from the environment, like dbt does.
    """
    path = profiles or project_root() / "profiles.yml"
    profile = yaml.safe_load(path.read_text(encoding="utf-8"))[PROFILE]
    raw = profile["outputs"][TARGET]["server_side_parameters"]
    root = str(lakehouse.resolve())

    def env_var(name: str, default: str | None = None) -> str:
        if name == LAKEHOUSE_ENV:
            return root
        value = os.environ.get(name, default)
        if value is None:
            raise KeyError(f"{path}: env_var({name!r}) is not set and has no default")
        return value

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return {key: env.from_string(str(value)).render(env_var=env_var) for key, value in raw.items()}


def local_session(lakehouse: Path, profiles: Path | None = None) -> SparkSession:
    """Start (or return) a local session configured like the dbt ``spark`` target."""
    from pyspark.sql import SparkSession

    settings = profile_settings(lakehouse, profiles)
    settings["spark.app.name"] = APP_NAME
    settings.update(RUNTIME_CONF)
    (lakehouse / "spark").mkdir(parents=True, exist_ok=True)
    # Python workers run the readers: they must be this interpreter (the project's venv), not
    # whatever ``python3`` is first on PATH, which is PySpark's default.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def session_for(lakehouse: Path) -> SparkSession:
    """The active Spark session if there is one, else a local one for ``lakehouse``.

    A session started here lives until the interpreter exits (like dbt-spark's): ``mmlake
    ingest --watch`` polls without paying the JVM start (6-9 s) each time.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ValueError(
            "the spark engine needs PySpark, an optional dependency: "
            "pip install -c requirements/constraints.txt -r requirements/spark.txt"
        ) from exc

    active = SparkSession.getActiveSession()
    return active if active is not None else local_session(lakehouse)


def stop_session(spark: SparkSession) -> None:
    """Stop ``spark`` and, if this interpreter launched its JVM, end that JVM as well.

    ``SparkSession.stop()`` leaves PySpark's gateway JVM running until the interpreter exits;
    a test suite or a long-lived service that is done with Spark should not keep it.
    """
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is not None:  # the JVM exits when its stdin pipe closes
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
