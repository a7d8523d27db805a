"""gold.cohort_subgroups (the fairness-evaluation attributes) against `_truth/patients.csv`.

Sex, age band, race, ethnicity and treating institution are planted per patient by the
generator; the table must recover each of them patient by patient, and race, ethnicity and site
must not leak into the training table as features.
"""

from __future__ import annotations

import duckdb
import pytest

SUBGROUPS = "gold.cohort_subgroups"
INSTITUTIONS = {
    "Riverside Cancer Center",
    "St. Mary's University Hospital",
    "Lakeshore Oncology Institute",
}


def _band(age: int) -> str:
    """The evaluation's age bands, written independently of the model's CASE."""
    for upper, band in ((50, "<50"), (65, "50-64"), (75, "65-74")):
        if age < upper:
            return band
    return "75+"


@pytest.fixture(scope="module")
def subgroups(warehouse: duckdb.DuckDBPyConnection) -> dict[str, dict[str, object]]:
    cursor = warehouse.execute(
        f"select patient_key, sex, age_at_index, age_band, race, ethnicity, site from {SUBGROUPS}"
    )
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_one_row_per_patient_of_the_ehr_spine(
    warehouse: duckdb.DuckDBPyConnection,
    subgroups: dict[str, dict[str, object]],
    truth_by_key: dict[str, dict[str, str]],
) -> None:
    rows = warehouse.execute("select patient_key from silver.stg_ehr__patients").fetchall()
    spine = {r[0] for r in rows}
    assert set(subgroups) == spine == set(truth_by_key)


def test_sex_and_age_band_match_truth(
    subgroups: dict[str, dict[str, object]], truth_by_key: dict[str, dict[str, str]]
) -> None:
    for key, truth in truth_by_key.items():
        row, age = subgroups[key], int(truth["age_at_diagnosis"])
        assert row["sex"] == truth["sex"], key
        assert row["age_at_index"] == age, key
        assert row["age_band"] == _band(age), key
    assert {r["age_band"] for r in subgroups.values()} == {"<50", "50-64", "65-74", "75+"}


def test_race_and_ethnicity_match_truth(
    subgroups: dict[str, dict[str, object]], truth_by_key: dict[str, dict[str, str]]
) -> None:
    for key, truth in truth_by_key.items():
        assert subgroups[key]["race"] == (truth["race"] or "Unknown"), key
        assert subgroups[key]["ethnicity"] == (truth["ethnicity"] or "Unknown"), key
    races = {r["race"] for r in subgroups.values()}
    # The cohort is mixed enough for per-race metrics, with unrecorded race reported as such.
    assert {"White", "Black or African American", "Unknown"} <= races and len(races) >= 4
    assert {r["ethnicity"] for r in subgroups.values()} == {
        "Hispanic or Latino",
        "Not Hispanic or Latino",
        "Unknown",
    }


def test_site_is_the_treating_institution(
    warehouse: duckdb.DuckDBPyConnection,
    subgroups: dict[str, dict[str, object]],
    truth_by_key: dict[str, dict[str, str]],
) -> None:
    """Every patient with a visit by the landmark gets their institution; the rest Unknown."""
    visited = {
        r[0]
        for r in warehouse.execute(
            """
            select distinct encounters.patient_key
            from silver.stg_ehr__encounters as encounters
            left join silver.int_ehr__index_dates as index_dates
                on encounters.patient_key = index_dates.patient_key
            where nullif(trim(encounters.service_provider), '') is not null
                and (index_dates.landmark_date is null
                     or encounters.encounter_date <= index_dates.landmark_date)
            """
        ).fetchall()
    }
    assert len(visited) >= 0.95 * len(truth_by_key), "nearly every patient has early visits"
    for key, truth in truth_by_key.items():
        expected = truth["institution"] if key in visited else "Unknown"
        assert subgroups[key]["site"] == expected, key
    assert {r["site"] for r in subgroups.values()} >= INSTITUTIONS


def test_subgroup_attributes_are_not_training_features(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    """Race, ethnicity and site never reach the training table (sex and age are clinical
    features of features_clinical in their own right)."""
    columns = [
        r[0]
        for r in warehouse.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'gold' and table_name = 'patient_multimodal'"
        ).fetchall()
    ]
    assert columns, "patient_multimodal is built"
    assert not [c for c in columns if any(w in c for w in ("race", "ethnic", "site_", "provider"))]
