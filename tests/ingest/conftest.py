"""Fixtures shared by the bronze ingestion tests (helpers are in ``tests/ingest/support.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmlake.duckdb_ext import connect
from tests.ingest.support import Duck


@pytest.fixture(scope="module")
def duck() -> Iterator[Duck]:
    """One DuckDB connection (with the Delta extension) per test module: loading it is slow."""
    with connect() as conn:
        yield Duck(conn)
