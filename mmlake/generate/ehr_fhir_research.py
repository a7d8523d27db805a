"""Research consent and study enrolment as the EHR exports them (FHIR R4 Consent, ResearchSubject,
ResearchStudy).

Every patient is asked at the start of care whether their data may be used for research: one
``Consent`` (scope ``research``) per patient, ``active`` with a ``permit`` provision when they
agreed, ``rejected`` with a ``deny`` provision when they declined, ``inactive`` when they agreed
and later withdrew (the permit provision's period ends on the withdrawal date). A patient with
an active consent is enrolled in one of the cohort's two ``ResearchStudy`` resources by a
``ResearchSubject`` (``on-study``, period starting at enrolment). The decision itself is drawn
in ``cohort`` (``PatientRecord.research_consent``/``study_id``) so that ``_truth`` and the export
tell the same story; dates and ids come from this module's own random stream.

These resources are never damaged: the governance row filters depend on them, so a dirty one
would silently change who may see a patient.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from mmlake.generate import ehr_fhir_resources as fhir
from mmlake.generate.cohort import RESEARCH_STUDIES, PatientRecord, new_uuid, stream_rng

Resource = dict[str, Any]

CONSENT_SCOPE = f"{fhir.TERMINOLOGY}/consentscope"
ACT_CODE = f"{fhir.TERMINOLOGY}/v3-ActCode"
ACT_REASON = f"{fhir.TERMINOLOGY}/v3-ActReason"
STUDY_SYSTEM = f"{fhir.FHIR_BASE}/sid/research-study"
# LOINC 59284-0 "Consent Document": the category the R4 research-consent examples use.
CONSENT_CATEGORY = ("59284-0", "Consent Document")
# Opt-in / opt-out privacy consent directives (HL7 v3 ActCode), the Consent.policyRule.
POLICY = {"permit": ("OPTIN", "opt-in"), "deny": ("OPTOUT", "opt-out")}
STUDY_TITLES = {
    "MMLAKE-ONC-001": "Multimodal prognostic signatures in first-line solid tumour therapy",
    "MMLAKE-ONC-002": "Wearable and patient-reported monitoring during systemic cancer therapy",
}
STUDY_START = dt.datetime(2018, 10, 1, 9, 0, tzinfo=fhir.CLINIC_TZ)  # before the first diagnosis


@functools.cache
def study_ids(seed: int) -> dict[str, str]:
    """Study identifier -> ResearchStudy logical id (fixed by the seed, one per cohort)."""
    return {
        study: new_uuid(stream_rng(seed, 0, f"ehr:research-study:{study}"))
        for study, _ in RESEARCH_STUDIES
    }


def research_studies(seed: int) -> list[Resource]:
    """The cohort's two ResearchStudy resources (observational, open since before enrolment)."""
    out = []
    for study, resource_id in study_ids(seed).items():
        res = {"resourceType": "ResearchStudy", "id": resource_id}
        res["meta"] = {"lastUpdated": fhir.fhir_instant(STUDY_START)}
        out.append(
            res
            | {
                "identifier": [{"use": "official", "system": STUDY_SYSTEM, "value": study}],
                "title": STUDY_TITLES[study],
                "status": "active",
                "primaryPurposeType": fhir.concept(
                    fhir.coding(
                        f"{fhir.TERMINOLOGY}/research-study-prim-purp-type",
                        "supportive-care" if study.endswith("002") else "treatment",
                    )
                ),
                "period": {"start": fhir.fhir_datetime(STUDY_START)},
                "sponsor": {"display": fhir.PROVIDER},
            }
        )
    return out


def _clinic_time(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=fhir.CLINIC_TZ)


def research_resources(seed: int, p: PatientRecord) -> list[Resource]:
    """The patient's Consent and, when the consent is active, their ResearchSubject."""
    rng = stream_rng(seed, p.index, "ehr:research")
    consent_id, subject_id = new_uuid(rng), new_uuid(rng)
    lag, hour, minute, enrol_lag, withdraw_lag = (
        int(x) for x in rng.integers((0, 8, 0, 1, 30), (21, 17, 60, 15, 330))
    )
    signed = _clinic_time(p.diagnosis_date + dt.timedelta(days=lag), hour, minute)
    decision = "deny" if p.research_consent == "rejected" else "permit"
    provision: Resource = {"type": decision, "period": {"start": fhir.fhir_datetime(signed)}}
    updated = signed + dt.timedelta(minutes=5)
    if p.research_consent == "inactive":  # agreed, then withdrew: the permission ended
        withdrawn = _clinic_time(signed.date() + dt.timedelta(days=withdraw_lag), hour, minute)
        provision["period"]["end"] = fhir.fhir_datetime(withdrawn)
        updated = withdrawn + dt.timedelta(minutes=5)
    provision["purpose"] = [fhir.coding(ACT_REASON, "HRESCH", "healthcare research")]
    head = fhir.Head(consent_id, p.patient_id, updated)
    consent = fhir.begin("Consent", head) | {
        "status": p.research_consent,
        "scope": fhir.concept(fhir.coding(CONSENT_SCOPE, "research", "Research")),
        "category": [fhir.concept(fhir.coding(fhir.LOINC, *CONSENT_CATEGORY))],
        "patient": fhir.ref("Patient", p.patient_id),
        "dateTime": fhir.fhir_datetime(signed),
        "organization": [{"display": fhir.PROVIDER}],
        "policyRule": fhir.concept(fhir.coding(ACT_CODE, *POLICY[decision])),
        "provision": provision,
    }
    if p.research_consent != "active" or p.study_id is None:
        return [consent]
    enrolled = signed + dt.timedelta(days=enrol_lag)
    head = fhir.Head(subject_id, p.patient_id, enrolled + dt.timedelta(minutes=5))
    subject = fhir.begin("ResearchSubject", head) | {
        "status": "on-study",
        "period": {"start": fhir.fhir_datetime(enrolled)},
        "study": fhir.ref("ResearchStudy", study_ids(seed)[p.study_id]),
        "individual": fhir.ref("Patient", p.patient_id),
        "consent": fhir.ref("Consent", consent_id),
    }
    return [consent, subject]
