"""EHR silver and gold against the generator's `_truth` and against bronze.

The outcome and the diagnosis are compared patient by patient with what the generator
planted. Privacy is checked from the data: every MRN of the cohort is looked for in every
string column of every silver and gold table. The two checks that need data the cohort does
not contain (a lab in a foreign unit; post-landmark records that change) run the models'
compiled SQL against a scratch copy of the warehouse with planted or deleted rows.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from mmlake.duckdb_ext import connect
from tests.models.conftest import Built

HEX64 = re.compile(r"^[0-9a-f]{64}$")
IDENTIFIERS_TABLE = ("silver", "stg_ehr__patient_identifiers")
EHR_TABLES = (
    "silver.stg_ehr__patients",
    "silver.stg_ehr__encounters",
    "silver.stg_ehr__conditions",
    "silver.stg_ehr__observations",
    "silver.stg_ehr__medications",
    "silver.stg_ehr__procedures",
    "silver.stg_ehr__imaging_studies",
    "silver.int_ehr__oncology_diagnoses",
    "silver.int_ehr__index_dates",
    "gold.outcomes",
    "gold.features_clinical",
    "gold.oncology_cohort",
)
DISEASE_STATUS = "97509-4"


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return conn.execute(sql, params or []).fetchall()


def _day(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@pytest.fixture(scope="module")
def truth_by_key(built: Built, warehouse: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Truth rows of the patients with an EHR, keyed by patient_key via the identifiers table."""
    key_of = dict(
        _rows(warehouse, "select mrn, patient_key from silver.stg_ehr__patient_identifiers")
    )
    rows = [r for r in built.truth_rows("patients.csv") if r["has_ehr"] == "1"]
    assert rows and all(r["mrn"].upper() in key_of for r in rows), "every EHR patient is keyed"
    return {key_of[r["mrn"].upper()]: r for r in rows}


def _compiled(built: Built, layer: str, model: str) -> str:
    """The compiled SELECT of one of this modality's models from the last dbt build."""
    path = (
        built.lakehouse
        / "dbt/target/compiled/multimodal_lakehouse/models"
        / layer
        / "ehr"
        / f"{model}.sql"
    )
    return path.read_text(encoding="utf-8")


def _scratch_copy(built: Built, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A writable copy of the warehouse with the same catalog name, for planting rows."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.warehouse, copy)
    return connect(copy)


def test_outcomes_equal_truth_labels(
    warehouse: duckdb.DuckDBPyConnection, truth_by_key: dict[str, dict]
) -> None:
    outcomes = {
        row[0]: row[1:]
        for row in _rows(
            warehouse,
            "select patient_key, label, progression_date, index_date, observation_end"
            " from gold.outcomes",
        )
    }
    assert set(outcomes) == set(truth_by_key)
    for key, truth in truth_by_key.items():
        label, progression, index_date, end = outcomes[key]
        assert label == int(truth["label"]), key
        assert progression == _day(truth["progression_date"]), key
        assert index_date == _day(truth["diagnosis_date"])
        assert end == index_date + dt.timedelta(days=365)
    positives = sum(int(t["label"]) for t in truth_by_key.values())
    assert 0 < positives < len(truth_by_key), "both classes are exercised"


def test_diagnosis_matches_truth(
    warehouse: duckdb.DuckDBPyConnection, truth_by_key: dict[str, dict]
) -> None:
    diagnoses = {
        row[0]: row[1:]
        for row in _rows(
            warehouse,
            "select patient_key, cancer_type, stage_number, diagnosis_date, age_at_diagnosis"
            " from silver.int_ehr__oncology_diagnoses",
        )
    }
    assert set(diagnoses) == set(truth_by_key)
    for key, truth in truth_by_key.items():
        assert diagnoses[key] == (
            truth["cancer"],
            int(truth["stage"]),
            _day(truth["diagnosis_date"]),
            int(truth["age_at_diagnosis"]),
        ), key
    index = dict(
        _rows(warehouse, "select patient_key, index_date from silver.int_ehr__index_dates")
    )
    assert index == {k: _day(t["diagnosis_date"]) for k, t in truth_by_key.items()}
    cohort = _rows(warehouse, "select patient_key, cancer_type, stage from gold.oncology_cohort")
    assert {(k, c, s) for k, c, s in cohort} == {
        (k, t["cancer"], int(t["stage"])) for k, t in truth_by_key.items()
    }


def test_features_clinical_ecog_and_sex_match_truth(
    warehouse: duckdb.DuckDBPyConnection, truth_by_key: dict[str, dict]
) -> None:
    features = {
        row[0]: row[1:]
        for row in _rows(
            warehouse, "select patient_key, ecog, sex, age_at_index from gold.features_clinical"
        )
    }
    assert set(features) == set(truth_by_key), "one row per EHR patient, no zero-filled rows"
    for key, truth in truth_by_key.items():
        assert features[key] == (int(truth["ecog"]), truth["sex"], int(truth["age_at_diagnosis"]))


def test_patient_keys_are_64_hex(warehouse: duckdb.DuckDBPyConnection) -> None:
    for table in (*EHR_TABLES, "silver.stg_ehr__patient_identifiers"):
        keys = [k for (k,) in _rows(warehouse, f"select distinct patient_key from {table}")]
        assert keys, f"{table} is empty"
        assert all(k and HEX64.match(k) for k in keys), table


def test_no_mrn_outside_the_identifiers_table(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    mrns = sorted({r["mrn"].upper() for r in built.truth_rows("patients.csv")})
    columns = _rows(
        warehouse,
        "select table_schema, table_name, column_name from information_schema.columns"
        " where table_schema in ('silver', 'gold') and data_type = 'VARCHAR'",
    )
    checked = 0
    for schema, table, column in columns:
        if (schema, table) == IDENTIFIERS_TABLE:
            continue
        hits = _rows(
            warehouse,
            f'select count(*) from {schema}."{table}" where "{column}" is not null'
            f' and (upper("{column}") in (select unnest(?))'
            f" or regexp_matches(\"{column}\", 'MRN[0-9]{{6,}}'))",
            [mrns],
        )[0][0]
        assert hits == 0, f"MRN in {schema}.{table}.{column}"
        checked += 1
    assert checked > 50
    identifiers = _rows(warehouse, "select count(*) from silver.stg_ehr__patient_identifiers")
    assert identifiers[0][0] == len(mrns)


def test_dangling_encounter_references_are_kept_and_flagged(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    dangling = {
        row["locator"].split("/")[-1]
        for row in built.truth_rows("dirty_records.csv")
        if row["modality"] == "ehr"
        and row["kind"] == "unresolvable_reference"
        and ".encounter ->" in row["reason"]
    }
    flagged = set()
    for table, id_column in (
        ("stg_ehr__observations", "observation_id"),
        ("stg_ehr__conditions", "condition_id"),
        ("stg_ehr__medications", "medication_request_id"),
        ("stg_ehr__procedures", "procedure_id"),
    ):
        flagged |= {
            r[0]
            for r in _rows(
                warehouse,
                f"select {id_column} from silver.{table} where not encounter_ref_resolved",
            )
        }
    assert dangling, "the cohort plants dangling encounter references"
    assert flagged == dangling


def test_unit_normalisation_of_a_planted_value(built: Built, tmp_path: Path) -> None:
    """Albumin in g/L and haemoglobin in mmol/L, planted in bronze, come out in g/dL."""
    conn = _scratch_copy(built, tmp_path)
    try:
        albumin_id, albumin = _rows(
            conn,
            "select id, value_quantity from bronze.ehr_observations"
            " where loinc_code = '1751-7' and value_unit_code = 'g/dL' order by id limit 1",
        )[0]
        # Swap the bronze view for a table holding the landed rows plus two planted ones.
        conn.execute("create table bronze.landed as select * from bronze.ehr_observations")
        conn.execute("drop view bronze.ehr_observations")
        conn.execute("alter table bronze.landed rename to ehr_observations")
        for planted in (
            "'planted-albumin' as id, value_quantity * 10 as value_quantity,"
            " 'g/L' as value_unit, 'g/L' as value_unit_code",
            "'planted-hemoglobin' as id, '59260-0' as loinc_code, 8.0 as value_quantity,"
            " 'mmol/L' as value_unit, 'mmol/L' as value_unit_code",
        ):
            conn.execute(
                f"insert into bronze.ehr_observations select * replace ({planted})"
                " from bronze.ehr_observations where id = ?",
                [albumin_id],
            )
        sql = _compiled(built, "silver", "stg_ehr__observations")
        planted = {
            row[0]: row[1:]
            for row in _rows(
                conn,
                f"select observation_id, canonical_loinc, value_canonical, canonical_unit"
                f" from ({sql}) where observation_id like 'planted-%'",
            )
        }
    finally:
        conn.close()
    assert planted["planted-albumin"] == ("1751-7", pytest.approx(albumin), "g/dL")
    assert planted["planted-hemoglobin"] == ("718-7", pytest.approx(12.8912), "g/dL")


def test_features_clinical_never_read_the_outcome(warehouse: duckdb.DuckDBPyConnection) -> None:
    columns = [
        c
        for (c,) in _rows(
            warehouse,
            "select column_name from information_schema.columns"
            " where table_schema = 'gold' and table_name = 'features_clinical'",
        )
    ]
    forbidden = ("label", "progress", "worsen", "status", "assessment", "outcome")
    assert not [c for c in columns if any(word in c for word in forbidden)]
    late = _rows(
        warehouse,
        "select count(*) from gold.features_clinical"
        " where last_record_days_before_landmark < 0 or ecog_days_before_landmark < 0",
    )
    assert late[0][0] == 0


def test_features_clinical_ignore_post_landmark_records(
    built: Built, warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Deleting every record dated after the landmark (and every disease-status assessment)
    from silver leaves features_clinical unchanged: nothing after the landmark is used."""
    before = sorted(_rows(warehouse, "select * from gold.features_clinical"))
    late_targeted = _rows(
        warehouse,
        "select count(*) from silver.stg_ehr__medications m join bronze.oncology_drugs d"
        " using (rxnorm_code) join silver.int_ehr__index_dates i using (patient_key)"
        " where d.therapy_class = 'targeted' and m.authored_date > i.landmark_date",
    )[0][0]
    assert late_targeted > 0, "the cohort starts targeted therapy after the landmark"
    conn = _scratch_copy(built, tmp_path)
    try:
        deleted = 0
        for table, date_expr in (
            ("stg_ehr__observations", "effective_date"),
            ("stg_ehr__medications", "authored_date"),
            ("stg_ehr__encounters", "encounter_date"),
            ("stg_ehr__procedures", "performed_date"),
            ("stg_ehr__conditions", "coalesce(cast(recorded_at as date), onset_date)"),
        ):
            deleted += conn.execute(
                f"delete from silver.{table} t using silver.int_ehr__index_dates i"
                f" where t.patient_key = i.patient_key and {date_expr} > i.landmark_date"
            ).fetchall()[0][0]
        conn.execute(
            f"delete from silver.stg_ehr__observations where loinc_code = '{DISEASE_STATUS}'"
        )
        after = sorted(_rows(conn, _compiled(built, "gold", "features_clinical")))
    finally:
        conn.close()
    assert deleted > 100
    assert after == before
