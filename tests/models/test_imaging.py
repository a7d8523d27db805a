"""Imaging silver and gold against bronze and the generator's `_truth`.

De-identification is checked from the data, not from the SQL: every identifying value that
bronze holds (MRNs, accession numbers, UIDs, names, birth dates, institution) is looked for
in every string column of every imaging silver and gold table, and the de-identification
profile seed is checked against the columns that exist. Date shifting is checked against the
real dates in bronze, and the gold features against the latent tumour burden the generator
planted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

import duckdb
import pytest
from scipy.stats import spearmanr

from mmlake.pseudonym import pseudonym_key
from tests.models.conftest import Built

IMAGING_TABLES = (
    "silver.stg_imaging__instances",
    "silver.stg_imaging__series",
    "silver.stg_imaging__studies",
    "silver.stg_imaging__features",
    "gold.features_imaging",
    "gold.imaging_embeddings",
)
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")  # a pseudonymised key (sha256, hex)
# Header attributes whose values identify a patient, a person or a site (DICOM keyword ->
# tag in DICOM JSON); their raw values must not reach silver or gold.
IDENTIFYING_HEADER_TAGS = {
    "PatientName": "00100010",
    "PatientID": "00100020",
    "PatientBirthDate": "00100030",
    "ReferringPhysicianName": "00080090",
    "InstitutionName": "00080080",
    "StationName": "00081010",
    "AccessionNumber": "00080050",
    "StudyID": "00200010",
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SOPInstanceUID": "00080018",
    "MediaStorageSOPInstanceUID": "00020003",
    "FrameOfReferenceUID": "00200052",
}


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return conn.execute(sql, params or []).fetchall()


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of a silver/gold relation."""
    schema, name = table.split(".")
    return dict(
        _rows(
            conn,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        )
    )


def _snake(keyword: str) -> str:
    """DICOM keyword -> its snake_case column name (SOPInstanceUID -> sop_instance_uid)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", keyword).lower()


def _key(lakehouse_key: str, identifier: str) -> str:
    """pseudonymize() in Python: sha256 of '<key>:<upper(trim(identifier))>'."""
    return hashlib.sha256(f"{lakehouse_key}:{identifier.strip().upper()}".encode()).hexdigest()


@pytest.fixture(scope="module")
def raw_identifiers(warehouse: duckdb.DuckDBPyConnection) -> set[str]:
    """Every identifying value bronze imaging holds, as the strings a leak would show."""
    values: set[str] = set()
    for column in (
        "patient_id",
        "accession_number",
        "sop_instance_uid",
        "series_instance_uid",
        "study_instance_uid",
        "institution_name",
    ):
        values |= {
            v
            for (v,) in _rows(warehouse, f"select distinct {column} from bronze.imaging_instances")
        }
    values |= {
        v for (v,) in _rows(warehouse, "select distinct _source_file from bronze.imaging_features")
    }
    for (header,) in _rows(warehouse, "select header_json from bronze.imaging_instances"):
        attributes = json.loads(header)
        for tag in IDENTIFYING_HEADER_TAGS.values():
            for value in attributes.get(tag, {}).get("Value", []):
                if isinstance(value, dict):  # person name: {"Alphabetic": "Family^Given^^Dr"}
                    name = value.get("Alphabetic", "")
                    values |= {name, *(part for part in name.split("^") if len(part) > 3)}
                else:
                    values.add(str(value))
                    if tag == "00100030":  # a birth date also as an ISO date
                        values.add(f"{value[:4]}-{value[4:6]}-{value[6:]}")
    return {v for v in values if v and len(v) > 3}


def _string_values(conn: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, str, set[str]]]:
    for table in IMAGING_TABLES:
        for column, data_type in _columns(conn, table).items():
            if data_type == "VARCHAR":
                found = {v for (v,) in _rows(conn, f"select distinct {column} from {table}") if v}
                yield table, column, found


def test_no_identifier_from_bronze_reaches_imaging_silver_or_gold(
    warehouse: duckdb.DuckDBPyConnection, raw_identifiers: set[str]
) -> None:
    assert len(raw_identifiers) > 1000  # MRNs, accessions, UIDs, names, dates were found
    leaks = []
    for table, column, found in _string_values(warehouse):
        exact = found & raw_identifiers
        # Embedded leaks too (a path or a free-text field holding an MRN or a UID); short
        # values (a 5-digit Study ID) would match inside any hex key by chance. Pseudonymised
        # keys (sha256 hex digests) are left out of that search: across thousands of them,
        # the 8 digits of some study or birth date turn up inside one by chance (~1% of runs).
        text = "\n".join(v for v in found if not HEX_DIGEST.fullmatch(v))
        embedded = {raw for raw in raw_identifiers if len(raw) >= 8 and raw in text}
        if exact or embedded:
            leaks.append((table, column, sorted(exact | embedded)[:3]))
    assert not leaks, f"raw identifiers in imaging silver/gold: {leaks}"


def test_deid_profile_matches_the_columns(warehouse: duckdb.DuckDBPyConnection) -> None:
    profile = _rows(
        warehouse, "select tag, keyword, action, silver_column from bronze.deid_profile"
    )
    columns = {table: set(_columns(warehouse, table)) for table in IMAGING_TABLES}
    every_column = set().union(*columns.values())
    # Nothing removed, pseudonymised or shifted is carried under its own name.
    raw_named = sorted(_snake(keyword) for _, keyword, action, _ in profile if action != "keep")
    assert "patient_birth_date" in raw_named and "accession_number" in raw_named
    assert every_column.isdisjoint(raw_named), every_column & set(raw_named)
    # The profile names real columns, and only removed attributes have none.
    named = {column for *_, column in profile if column}
    assert named <= columns["silver.stg_imaging__instances"], named - every_column
    assert all(column is None for _, _, action, column in profile if action == "remove")
    # Every attribute the landed headers carry is classified.
    tags = {
        tag
        for (tag,) in _rows(
            warehouse,
            "select distinct unnest(json_keys(header_json)) from bronze.imaging_instances",
        )
    }
    assert tags <= {tag for tag, *_ in profile}, tags - {tag for tag, *_ in profile}


@pytest.fixture(scope="module")
def shifted_vs_real(built: Built, warehouse: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(patient_key, real study date, shifted study date, days_from_index) per instance."""
    key = pseudonym_key(built.lakehouse)
    return _rows(
        warehouse,
        """
        select s.patient_key, b.study_date, s.shifted_study_date, s.days_from_index, b.patient_id
        from bronze.imaging_instances as b
        inner join silver.stg_imaging__instances as s
            on s.instance_key = sha256(? || ':' || upper(trim(b.sop_instance_uid)))
        """,
        [key],
    )


def test_dates_shift_by_one_secret_offset_per_patient(shifted_vs_real: list[tuple]) -> None:
    assert shifted_vs_real
    offsets: dict[str, set[int]] = {}
    for patient_key, real, shifted, *_ in shifted_vs_real:
        offsets.setdefault(patient_key, set()).add((shifted - real).days)
    # One offset per patient, so every interval between that patient's dates is preserved.
    assert all(len(found) == 1 for found in offsets.values())
    per_patient = [next(iter(found)) for found in offsets.values()]
    assert all(-180 <= days <= 180 and days != 0 for days in per_patient)
    # Offsets differ across patients (360 possible values; a handful of collisions is chance).
    assert len(set(per_patient)) >= 0.6 * len(per_patient)
    assert min(per_patient) < 0 < max(per_patient)


def test_study_intervals_within_a_patient_are_preserved(
    warehouse: duckdb.DuckDBPyConnection, shifted_vs_real: list[tuple]
) -> None:
    real: dict[str, set] = {}
    for patient_key, real_date, *_ in shifted_vs_real:
        real.setdefault(patient_key, set()).add(real_date)
    shifted: dict[str, set] = {}
    for patient_key, shifted_date in _rows(
        warehouse, "select patient_key, shifted_study_date from silver.stg_imaging__studies"
    ):
        shifted.setdefault(patient_key, set()).add(shifted_date)
    followed_up = [p for p, dates in real.items() if len(dates) > 1]
    assert followed_up, "the cohort should have patients with a follow-up study"
    for patient_key in followed_up:
        real_sorted, shifted_sorted = sorted(real[patient_key]), sorted(shifted[patient_key])
        assert [(d - real_sorted[0]).days for d in real_sorted] == [
            (d - shifted_sorted[0]).days for d in shifted_sorted
        ]


def test_days_from_index_is_the_real_interval_to_diagnosis(
    built: Built, shifted_vs_real: list[tuple]
) -> None:
    import datetime as dt

    diagnosis = {
        row["mrn"]: dt.date.fromisoformat(row["diagnosis_date"])
        for row in built.truth_rows("patients.csv")
    }
    checked = 0
    for _, real, _, days_from_index, mrn in shifted_vs_real:
        if mrn in diagnosis and days_from_index is not None:
            assert days_from_index == (real - diagnosis[mrn]).days
            checked += 1
    assert checked >= 0.9 * len(shifted_vs_real)


def test_features_imaging_tracks_tumour_burden(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    key = pseudonym_key(built.lakehouse)
    truth = {_key(key, row["mrn"]): row for row in built.truth_rows("patients.csv")}
    rows = _rows(
        warehouse,
        "select patient_key, lesion_diameter_mm, lesion_volume_ml, feature_status "
        "from gold.features_imaging",
    )
    imaged = {k for k, row in truth.items() if row["has_imaging"] == "1"}
    gold = {patient_key for patient_key, *_ in rows}
    # Only patients with imaging, and nearly all of them (staging scans precede the landmark).
    assert gold <= imaged
    assert len(gold) >= 0.9 * len(imaged)
    measured = [(d, float(truth[k]["latent_burden"])) for k, d, _, s in rows if s == "ok"]
    rho, _ = spearmanr([d for d, _ in measured], [b for _, b in measured])
    assert rho > 0.3, f"lesion diameter vs latent burden: Spearman {rho:.2f}"


def test_baseline_study_is_on_or_before_the_landmark(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    late = _rows(
        warehouse,
        """
        select f.patient_key
        from gold.features_imaging as f
        inner join silver.int_ehr__index_dates as i on f.patient_key = i.patient_key
        where f.days_from_index > date_diff('day', i.index_date, i.landmark_date)
        """,
    )
    assert not late
    # Follow-up scans after the landmark exist and are never the baseline.
    after = _rows(
        warehouse,
        """
        select count(*) from silver.stg_imaging__studies as s
        inner join silver.int_ehr__index_dates as i on s.patient_key = i.patient_key
        where s.days_from_index > date_diff('day', i.index_date, i.landmark_date)
        """,
    )[0][0]
    assert after > 0


def test_embeddings_are_ready_for_the_vector_index(warehouse: duckdb.DuckDBPyConnection) -> None:
    n_series, n_ok, n_fixed = _rows(
        warehouse,
        """
        select
            (select count(*) from silver.stg_imaging__features where status = 'ok'),
            count(*) filter (where len(embedding) = embedding_dim),
            count(*) filter (where len(cast(embedding as float[64])) = 64)
        from gold.imaging_embeddings
        """,
    )[0]
    assert n_series > 0 and n_ok == n_series == n_fixed
    window = _rows(
        warehouse,
        "select count(distinct patient_key) from gold.imaging_embeddings "
        "where within_feature_window",
    )[0][0]
    assert 0 < window <= _rows(warehouse, "select count(*) from gold.features_imaging")[0][0]


def test_firstorder_std_tracks_heterogeneity_on_ct(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Intensity spread is in Hounsfield units only on CT; MR intensities are scanner units.
    key = pseudonym_key(built.lakehouse)
    truth = {_key(key, row["mrn"]): row for row in built.truth_rows("patients.csv")}
    rows = _rows(
        warehouse,
        "select patient_key, firstorder_std from gold.features_imaging "
        "where modality = 'CT' and feature_status = 'ok' and has_lesion",
    )
    assert len(rows) >= 20
    rho, _ = spearmanr(
        [std for _, std in rows], [float(truth[k]["latent_heterogeneity"]) for k, _ in rows]
    )
    assert rho > 0.3, f"firstorder_std vs latent heterogeneity: Spearman {rho:.2f}"
