"""Research consent and study enrolment in the EHR export (Consent, ResearchSubject,
ResearchStudy) and in ``_truth/patients.csv``.

The governance row filters are built on these resources, so every patient's consent must say
exactly what ``_truth`` says, enrolment must only follow an active consent, and the resources
must pass the ingestion's own FHIR validation (never quarantined).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from mmlake.generate.cohort import CONSENT_ACTIVE_RATE, RESEARCH_STUDIES
from mmlake.generate.ehr_fhir_research import STUDY_SYSTEM
from mmlake.generate.runner import GenerationResult
from python_ingest.ehr_validate import check_resource
from tests.generate.conftest import read_truth
from tests.generate.test_ehr_fhir import (
    PATIENTS,
    SEED,
    Export,
    _by_patient,
    _dirty_rows,
    _generate,
    _read,
)

RESEARCH_TYPES = ("Consent", "ResearchSubject", "ResearchStudy")


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """The EHR writer's export read back (same seed and size as test_ehr_fhir)."""
    out = tmp_path_factory.mktemp("ehr_research")
    return _read(out, _generate(out, SEED, PATIENTS))


def _of_type(source: Export, rtype: str) -> list[dict[str, Any]]:
    return [r for r in source.valid.values() if r["resourceType"] == rtype]


def test_research_resources_are_clean_and_pass_ingest_validation(ehr: Export) -> None:
    damaged = {row["locator"].split()[-1].split("/")[0] for row in _dirty_rows(ehr.out)}
    assert not damaged & set(RESEARCH_TYPES), "the row filters' inputs are never damaged"
    for rtype in RESEARCH_TYPES:
        resources = _of_type(ehr, rtype)
        assert resources, rtype
        for r in resources:
            assert check_resource(r, full=True) is None, r


def test_one_consent_per_patient_as_planted(ehr: Export) -> None:
    charts = _by_patient(ehr)
    for p in ehr.patients:
        (consent,) = charts[p.patient_id]["Consent"]
        assert consent["status"] == p.research_consent
        assert consent["scope"]["coding"][0]["code"] == "research"
        assert consent["category"] and consent["patient"]["reference"] == f"Patient/{p.patient_id}"
        provision = consent["provision"]
        assert provision["type"] == ("deny" if p.research_consent == "rejected" else "permit")
        assert ("end" in provision["period"]) == (p.research_consent == "inactive")
        signed = dt.datetime.fromisoformat(consent["dateTime"])
        assert 0 <= (signed.date() - p.diagnosis_date).days < 21


def test_only_consented_patients_are_enrolled_in_their_study(ehr: Export) -> None:
    studies = {r["id"]: r for r in _of_type(ehr, "ResearchStudy")}
    identifiers = {r["identifier"][0]["value"] for r in studies.values()}
    assert identifiers == {study for study, _ in RESEARCH_STUDIES}
    assert all(r["identifier"][0]["system"] == STUDY_SYSTEM for r in studies.values())
    charts = _by_patient(ehr)
    for p in ehr.patients:
        subjects = charts[p.patient_id]["ResearchSubject"]
        if p.research_consent != "active":
            assert not subjects and p.study_id is None
            continue
        (subject,) = subjects
        study = studies[subject["study"]["reference"].split("/")[1]]
        assert study["identifier"][0]["value"] == p.study_id
        assert subject["status"] == "on-study"
        (consent,) = charts[p.patient_id]["Consent"]
        assert subject["consent"]["reference"] == f"Consent/{consent['id']}"
        assert subject["period"]["start"] >= consent["dateTime"]  # same offset: text order


def test_truth_records_consent_and_study(cohort: GenerationResult) -> None:
    patients = read_truth(cohort.out_dir, "patients.csv")
    status = Counter(patients["research_consent"])
    assert set(status) == {"active", "rejected", "inactive"}
    assert abs(status["active"] / len(patients) - CONSENT_ACTIVE_RATE) < 0.05
    assert status["rejected"] > status["inactive"]
    active = patients[patients["research_consent"] == "active"]
    assert active["study_id"].notna().all()
    assert patients.loc[patients["research_consent"] != "active", "study_id"].isna().all()
    share = (active["study_id"] == RESEARCH_STUDIES[0][0]).mean()
    assert share == pytest.approx(RESEARCH_STUDIES[0][1], abs=0.07)
    # Consent is drawn apart from the outcome: the governed cohort is not biased by it.
    rate = patients.groupby(patients["research_consent"] == "active")["label"].mean()
    assert abs(rate[True] - rate[False]) < 0.15
