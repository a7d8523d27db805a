"""A small cohort with planted near twins, built once per session for similar-case tests.

Generates 200 patients (about six near twins at the 3% rate), ingests them and builds only
what similar-case search reads (gold imaging_embeddings and patient_multimodal with their
upstream models; dbt's data tests belong to the model suites). MMLAKE_TEST_SIMILAR_DIR=DIR
reuses DIR across sessions for quick iteration; CI never sets it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmlake.dbt_runner import run_dbt
from mmlake.duckdb_ext import connect
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.runner import ingest_sources

PATIENTS = 200
SEED = 11
SELECT = "+imaging_embeddings +patient_multimodal"


@dataclass(frozen=True)
class Cohort:
    raw: Path
    lakehouse: Path
    key_of_mrn: dict[str, str]  # upper-case MRN -> patient_key
    cancer_of: dict[str, str]  # patient_key -> cancer_type

    def twin_pairs(self) -> list[tuple[str, str]]:
        """(twin key, source key) of every planted near twin."""
        with (self.raw / "_truth" / "similar_pairs.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [
            (self.key_of_mrn[r["mrn"].upper()], self.key_of_mrn[r["twin_of_mrn"].upper()])
            for r in rows
        ]


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    reuse = os.environ.get("MMLAKE_TEST_SIMILAR_DIR")
    base = Path(reuse) if reuse else tmp_path_factory.mktemp("similar")
    raw, lakehouse = base / "raw", base / "lakehouse"
    if not (lakehouse / "gold" / "patient_multimodal").exists():
        generate_cohort(GenerationConfig(patients=PATIENTS, seed=SEED), raw)
        ingest_sources(raw, "all", lakehouse, progress=False)
        run_dbt(
            ["build", "--select", SELECT, "--exclude-resource-type", "test", "unit_test"],
            target="local",
            lakehouse=lakehouse,
        )
    with connect(lakehouse / "warehouse.duckdb", read_only=True) as con:
        key_of_mrn = dict(
            con.execute(
                "select upper(mrn), patient_key from silver.stg_ehr__patient_identifiers"
            ).fetchall()
        )
        cancer_of = dict(
            con.execute("select patient_key, cancer_type from gold.patient_multimodal").fetchall()
        )
    return Cohort(raw, lakehouse, key_of_mrn, cancer_of)


@pytest.fixture(scope="session")
def built(cohort: Cohort):
    """The index and gold similar_cases, built once."""
    from mmlake.similar import build

    return build(cohort.lakehouse, k=10)
