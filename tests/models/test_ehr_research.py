"""Research consent and study enrolment silver models against `_truth` and bronze.

These two models feed the governance row filters (`consent`, `study`), so they are checked
patient by patient: a wrong status here would show or hide a patient's data everywhere.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from tests.models.conftest import Built

CONSENTS = "silver.stg_ehr__research_consents"
SUBJECTS = "silver.stg_ehr__research_subjects"
STUDIES = {"MMLAKE-ONC-001", "MMLAKE-ONC-002"}


def test_every_patient_has_the_planted_consent(
    warehouse: duckdb.DuckDBPyConnection, truth_by_key: dict[str, dict[str, str]]
) -> None:
    rows = warehouse.execute(
        f"select patient_key, consent_status, decision, is_research_permitted, scope, "
        f"decided_on, permitted_until from {CONSENTS}"
    ).fetchall()
    assert {r[0] for r in rows} == set(truth_by_key)
    statuses = set()
    for key, status, decision, permitted, scope, decided_on, until in rows:
        truth = truth_by_key[key]
        statuses.add(status)
        assert status == truth["research_consent"], key
        assert scope == "research"
        assert decision == ("deny" if status == "rejected" else "permit")
        assert permitted == (status == "active")
        # Asked at the start of care: within three weeks of the diagnosis.
        diagnosis = dt.date.fromisoformat(truth["diagnosis_date"])
        assert diagnosis <= decided_on < diagnosis + dt.timedelta(days=21)
        assert (until is not None) == (status == "inactive")
    assert statuses == {"active", "rejected", "inactive"}, "the cohort holds every outcome"


def test_enrolment_matches_the_planted_study(
    warehouse: duckdb.DuckDBPyConnection, truth_by_key: dict[str, dict[str, str]]
) -> None:
    rows = warehouse.execute(
        f"select subjects.patient_key, subjects.study_id, subjects.status, "
        f"subjects.on_study_from, consents.decided_on, consents.consent_status "
        f"from {SUBJECTS} as subjects "
        f"left join {CONSENTS} as consents on subjects.patient_key = consents.patient_key"
    ).fetchall()
    enrolled = {k: t["study_id"] for k, t in truth_by_key.items() if t["study_id"]}
    assert {r[0]: r[1] for r in rows} == enrolled
    assert len(rows) == len(enrolled), "one enrolment per enrolled patient"
    assert set(enrolled.values()) == STUDIES
    for _key, _study, status, on_study_from, decided_on, consent_status in rows:
        assert status == "on-study"
        assert consent_status == "active", "only consented patients are enrolled"
        assert decided_on <= on_study_from <= decided_on + dt.timedelta(days=14)


def test_every_research_resource_of_bronze_is_accounted(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    """The generated export is clean for these types: every bronze row reaches silver."""
    bronze = dict(
        warehouse.execute(
            "select resource_type, count(distinct id) from bronze.ehr_resources "
            "where resource_type in ('Consent', 'ResearchSubject', 'ResearchStudy') group by 1"
        ).fetchall()
    )
    consents = warehouse.execute(f"select count(*) from {CONSENTS}").fetchone()[0]
    subjects, studies = warehouse.execute(
        f"select count(*), count(distinct research_study_id) from {SUBJECTS}"
    ).fetchone()
    assert bronze == {"Consent": consents, "ResearchSubject": subjects, "ResearchStudy": studies}


def test_no_direct_identifier_leaves_bronze(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Neither MRNs nor FHIR Patient ids (linkable to the EHR) appear in these models."""
    truth = built.truth_rows("patients.csv")
    identifiers = {r["mrn"].upper() for r in truth} | {r["patient_id"] for r in truth}
    for table in (CONSENTS, SUBJECTS):
        columns = [
            c[0] for c in warehouse.execute(f"describe {table}").fetchall() if c[1] == "VARCHAR"
        ]
        for column in columns:
            values = {
                str(v[0]).upper()
                for v in warehouse.execute(f"select distinct {column} from {table}").fetchall()
            }
            assert not values & {i.upper() for i in identifiers}, f"{table}.{column}"
