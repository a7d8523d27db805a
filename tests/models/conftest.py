"""One real pipeline run shared by the dbt model tests: generate -> ingest -> dbt build.

The cohort is small but has every modality, the dirty records and the planted truth
(`_truth/`), so model tests can check silver and gold against what the generator planted.
Building it once per session keeps the suite fast; tests only read the result.

Two environment variables make iterating on one modality's models quicker; neither is set in
CI, so CI always builds the whole graph from scratch:
- MMLAKE_TEST_LAKEHOUSE=DIR reuses DIR across sessions (generated and ingested on the first
  run; dbt build runs every time, so model edits are picked up);
- MMLAKE_TEST_SELECT="<dbt selector>" builds only that part of the graph.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from mmlake.dbt_runner import run_dbt
from mmlake.duckdb_ext import connect
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.runner import ingest_sources

PATIENTS = 120
SEED = 11


@dataclass(frozen=True)
class Built:
    """Where the shared pipeline run put its inputs and outputs."""

    raw: Path
    lakehouse: Path

    @property
    def truth(self) -> Path:
        return self.raw / "_truth"

    @property
    def warehouse(self) -> Path:
        return self.lakehouse / "warehouse.duckdb"

    def truth_rows(self, name: str) -> list[dict[str, str]]:
        """Rows of a `_truth` CSV (patients.csv, features.csv, note_mentions.csv, ...)."""
        with (self.truth / name).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    reuse = os.environ.get("MMLAKE_TEST_LAKEHOUSE")
    base = Path(reuse) if reuse else tmp_path_factory.mktemp("pipeline")
    result = Built(raw=base / "raw", lakehouse=base / "lakehouse")
    if not (result.lakehouse / "bronze" / "_ingest_log").exists():
        generate_cohort(GenerationConfig(patients=PATIENTS, seed=SEED), result.raw)
        ingest_sources(result.raw, "all", result.lakehouse, progress=False)
    args = ["build"]
    if os.environ.get("MMLAKE_TEST_SELECT"):
        args += ["--select", os.environ["MMLAKE_TEST_SELECT"]]
    run_dbt(args, target="local", lakehouse=result.lakehouse)
    # Docs now, while nothing else holds the DuckDB file: dbt opens it read-write, and DuckDB
    # refuses a second, differently configured handle in the same process.
    run_dbt(["docs", "generate"], target="local", lakehouse=result.lakehouse)
    return result


@pytest.fixture(scope="session")
def warehouse(built: Built) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only DuckDB connection to the built warehouse (gold views need the delta extension)."""
    with connect(built.warehouse, read_only=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def truth_by_key(built: Built, warehouse: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Truth rows of the EHR patients keyed by patient_key (via the identifiers table)."""
    key_of = dict(
        warehouse.execute(
            "select mrn, patient_key from silver.stg_ehr__patient_identifiers"
        ).fetchall()
    )
    rows = [r for r in built.truth_rows("patients.csv") if r["has_ehr"] == "1"]
    assert rows and all(r["mrn"].upper() in key_of for r in rows)
    return {key_of[r["mrn"].upper()]: r for r in rows}
