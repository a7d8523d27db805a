"""Fixtures shared by the bronze ingestion tests (helpers are in ``tests/ingest/support.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mmlake.duckdb_ext import connect
from tests.ingest.support import Duck

REPO_ROOT = Path(__file__).resolve().parents[2]
# What Spark, Hive and Derby create in the working directory unless pinned under the lakehouse.
STRAY = ("metastore_db", "derby.log", "spark-warehouse")


@pytest.fixture(scope="module")
def duck() -> Iterator[Duck]:
    """One DuckDB connection (with the Delta extension) per test module: loading it is slow."""
    with connect() as conn:
        yield Duck(conn)


@pytest.fixture(scope="module")
def duck_conn() -> Iterator[duckdb.DuckDBPyConnection]:
    """The same connection, bare, for tests that compare whole query results."""
    with connect() as conn:
        yield conn


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session (the dbt profile's settings) per module, stopped with its JVM.

    It must leave nothing in the repository or the working directory.
    """
    from python_ingest.spark_session import local_session, stop_session

    home = tmp_path_factory.mktemp("spark-home") / "lakehouse"
    before = {name for name in STRAY if (REPO_ROOT / name).exists() or Path(name).exists()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        session = local_session(home)
        try:
            yield session
        finally:
            stop_session(session)
    after = {name for name in STRAY if (REPO_ROOT / name).exists() or Path(name).exists()}
    assert after == before, "Spark wrote into the repository root or the working directory"
