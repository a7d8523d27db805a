"""FHIR R4 building blocks of the synthetic EHR: resource builders, NDJSON files, damage.

The builders return JSON-ready dicts rather than ``fhir.resources`` models: those models are a
dev dependency here and cost ~0.1 ms per resource, while these dicts are shaped exactly like an
EHR's FHIR Bulk Data export (US Core / mCODE flavoured) and are validated against the R4B models
in the tests. Codes are real (LOINC, SNOMED CT, ICD-10-CM, RxNorm, UCUM, HL7 terminology), so an
ingestion written against these files works unchanged on a real export.

``NdjsonSink`` writes one resource type's Bulk Data files; ``damage`` makes the dirty records.
What the chart codes with these builders (stage groups, procedures, dosing, comorbidities) is
in :mod:`mmlake.generate.ehr_fhir_codes`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from mmlake.generate import reference as refdata
from mmlake.generate.cohort import PatientRecord
from mmlake.generate.reference import Loinc, Therapy

Resource = dict[str, Any]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
# The source hospital; ``.example.org`` is reserved (RFC 2606), so the namespace is fictional.
FHIR_BASE = "https://ehr.riverside-cancer-center.example.org/fhir"
MRN_SYSTEM = "https://ehr.riverside-cancer-center.example.org/fhir/sid/mrn"
# The study sponsor (research resources). Encounters name the patient's treating institution.
PROVIDER = "Riverside Cancer Center"
# The clinic's wall-clock offset. Clinic hours (08:00-17:00) keep every event on the same
# calendar date whether a reader keeps the offset or converts to UTC.
CLINIC_TZ = dt.timezone(dt.timedelta(hours=-5))

_DISPLAY = {
    "laboratory": "Laboratory",
    "vital-signs": "Vital Signs",
    "survey": "Survey",
    "exam": "Exam",
    "encounter-diagnosis": "Encounter Diagnosis",
    "problem-list-item": "Problem List Item",
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    return out | {"display": display} if display else out


def concept(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    return {"coding": list(codings), "text": text} if text else {"coding": list(codings)}


def loinc_concept(loinc: Loinc, text: str | None = None) -> dict[str, Any]:
    return concept(coding(LOINC, loinc.code, loinc.display), text=text or loinc.display)


def ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def fhir_datetime(t: dt.datetime) -> str:
    """FHIR dateTime with the clinic's offset, as EHRs export local wall-clock times."""
    return t.isoformat(timespec="seconds")


def fhir_instant(t: dt.datetime) -> str:
    """FHIR instant in UTC (meta.lastUpdated, Observation.issued, the bulk transactionTime)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Head:
    """What every patient-scoped resource starts with: its id, whose it is, when last written."""

    id: str
    patient_id: str
    updated: dt.datetime  # meta.lastUpdated
    encounter_id: str | None = None


def begin(resource_type: str, h: Head, profile: str | None = None) -> Resource:
    """What every resource opens with: resourceType, id and meta (mCODE profile if any)."""
    meta: dict[str, Any] = {"lastUpdated": fhir_instant(h.updated)}
    if profile:
        meta["profile"] = [f"{MCODE}/{profile}"]
    return {"resourceType": resource_type, "id": h.id, "meta": meta}


def context(h: Head) -> Resource:
    """subject (and encounter): the references that link a record to its patient and visit."""
    out = {"subject": ref("Patient", h.patient_id)}
    if h.encounter_id:
        out["encounter"] = ref("Encounter", h.encounter_id)
    return out


def patient(p: PatientRecord, updated: dt.datetime) -> Resource:
    """Patient with PHI on purpose: the bronze layer is restricted and de-identifies downstream.

    ``id`` is the cohort's patient id, so every other modality can link to it directly.
    """
    mrn_type = concept(coding(f"{TERMINOLOGY}/v2-0203", "MR", "Medical record number"))
    name = {"use": "official", "text": f"{p.given_name} {p.family_name}"}
    res = begin("Patient", Head(p.patient_id, p.patient_id, updated))
    recorded = (("race", p.race), ("ethnicity", p.ethnicity))
    if extension := [us_core_category(kind, code) for kind, code in recorded if code]:
        res["extension"] = extension  # US Core race/ethnicity, when the chart records them
    return res | {
        "identifier": [{"use": "usual", "type": mrn_type, "system": MRN_SYSTEM, "value": p.mrn}],
        "active": True,
        "name": [name | {"family": p.family_name, "given": [p.given_name]}],
        "telecom": [{"system": "phone", "value": p.phone, "use": "home"}],
        "gender": p.sex,
        "birthDate": p.birth_date.isoformat(),
        "address": [
            {"use": "home", "line": [p.address_line], "city": p.city}
            | {"postalCode": p.postal_code, "country": "US"}
        ],
    }


def us_core_category(kind: str, code: str) -> Resource:
    """A US Core race or ethnicity extension: the CDC code and its text.

    OMB categories go in ``ombCategory``, finer codes such as "Other Race" in ``detailed``; the
    required ``text`` sub-extension repeats the display, as EHRs print it.
    """
    display = refdata.RACE_ETHNICITY_DISPLAY[code]
    slot = "ombCategory" if code in refdata.OMB_CATEGORIES else "detailed"
    parts = [
        {"url": slot, "valueCoding": coding(refdata.RACE_ETHNICITY_SYSTEM, code, display)},
        {"url": "text", "valueString": display},
    ]
    return {"url": f"{US_CORE}/us-core-{kind}", "extension": parts}


def encounter(
    h: Head, inpatient: bool, kind: str, start: dt.datetime, end: dt.datetime, provider: str
) -> Resource:
    """An R4 Encounter: ``class`` is one v3 ActCode Coding (AMB/IMP), not a list as in R5.

    ``serviceProvider`` names the patient's treating institution (decided in the cohort, as in
    the DICOM headers and the notes), the site subgroup of the model evaluation.
    """
    code, display = ("IMP", "inpatient encounter") if inpatient else ("AMB", "ambulatory")
    return begin("Encounter", h) | {
        "status": "finished",
        "class": coding(f"{TERMINOLOGY}/v3-ActCode", code, display),
        "type": [{"text": kind}],
        "subject": ref("Patient", h.patient_id),
        "period": {"start": fhir_datetime(start), "end": fhir_datetime(end)},
        "serviceProvider": {"display": provider},
    }


def condition(
    h: Head,
    codes: tuple[tuple[str, str], tuple[str, str]],
    text: str,
    category: str,
    onset: dt.date,
    recorded: dt.datetime,
    stage: Resource | None = None,
) -> Resource:
    """A Condition coded twice: ICD-10-CM (billing) and SNOMED CT (clinical meaning).

    onsetDateTime has date precision on purpose (FHIR dateTime allows it): the day the
    diagnosis was confirmed, which is what the outcome window is counted from.
    """
    status = concept(coding(f"{TERMINOLOGY}/condition-clinical", "active", "Active"))
    verified = concept(coding(f"{TERMINOLOGY}/condition-ver-status", "confirmed", "Confirmed"))
    cat = concept(coding(f"{TERMINOLOGY}/condition-category", category, _DISPLAY[category]))
    (icd, icd_display), (sct, sct_display) = codes
    code = concept(coding(ICD10CM, icd, icd_display), coding(SNOMED, sct, sct_display), text=text)
    res = begin("Condition", h, "mcode-primary-cancer-condition" if stage else None) | {
        "clinicalStatus": status,
        "verificationStatus": verified,
        "category": [cat],
        "code": code,
        **context(h),
        "onsetDateTime": onset.isoformat(),
        "recordedDate": fhir_datetime(recorded),
    }
    return res | {"stage": [stage]} if stage else res


def quantity(value: float, unit: str) -> Resource:
    """A UCUM Quantity (the printable ``unit`` and the UCUM ``code`` coincide for these units)."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def lab_value(value: float, unit: str, low: float | None, high: float | None) -> Resource:
    """valueQuantity with the lab's reference range and its H/L/N interpretation flag."""
    flag = ("N", "Normal")
    if low is not None and value < low:
        flag = ("L", "Low")
    if high is not None and value > high:
        flag = ("H", "High")
    bounds = {k: quantity(v, unit) for k, v in (("low", low), ("high", high)) if v is not None}
    return {
        "valueQuantity": quantity(value, unit),
        "interpretation": [concept(coding(f"{TERMINOLOGY}/v3-ObservationInterpretation", *flag))],
        "referenceRange": [bounds],
    }


def observation(
    h: Head,
    loinc: Loinc,
    category: str,
    effective: dt.datetime,
    value: Resource,
    *,
    text: str | None = None,
    profile: str | None = None,
    evidence: tuple[str, str] | None = None,
    focus_condition_id: str | None = None,
) -> Resource:
    """One Observation; ``value`` holds the value[x] (or component) elements to append.

    Oncology observations (stage group, disease status) carry ``focus`` -> the primary cancer
    Condition, as mCODE requires, so a judgement is tied to the tumour it is about.
    """
    res = begin("Observation", h, profile)
    if evidence is not None:
        # mCODE evidence type: what the clinician's disease-status judgement rests on.
        url = f"{MCODE}/mcode-evidence-type"
        res["extension"] = [
            {"url": url, "valueCodeableConcept": concept(coding(SNOMED, *evidence))}
        ]
    cat = concept(coding(f"{TERMINOLOGY}/observation-category", category, _DISPLAY[category]))
    res |= {"status": "final", "category": [cat], "code": loinc_concept(loinc, text), **context(h)}
    if focus_condition_id:
        res["focus"] = [ref("Condition", focus_condition_id)]
    res["effectiveDateTime"] = fhir_datetime(effective)
    res["issued"] = fhir_instant(h.updated)
    return res | value


def medication_request(
    h: Head,
    therapy: Therapy,
    status: str,
    authored: dt.datetime,
    sig: str,
    reason_condition_id: str | None = None,
    reason_text: str | None = None,
) -> Resource:
    """An order coded with the RxNorm ingredient; dosing as the prescriber's sig text."""
    drug = concept(coding(RXNORM, therapy.rxnorm, therapy.name), text=therapy.name)
    res = begin("MedicationRequest", h) | {"status": status, "intent": "order"}
    res |= {"medicationCodeableConcept": drug, **context(h), "authoredOn": fhir_datetime(authored)}
    if reason_condition_id:
        res["reasonReference"] = [ref("Condition", reason_condition_id)]
    if reason_text:
        res["reasonCode"] = [{"text": reason_text}]
    return res | {"dosageInstruction": [{"sequence": 1, "text": sig}]}


def order_history(status_reason: str | None, prior_id: str | None) -> Resource:
    """Why an order was stopped, and which stopped order a dose change replaces."""
    out: Resource = {"statusReason": {"text": status_reason}} if status_reason else {}
    if prior_id:
        out["priorPrescription"] = ref("MedicationRequest", prior_id)
    return out


def procedure(
    h: Head, code: tuple[str, str], performed: dt.datetime, site: str, condition_id: str
) -> Resource:
    return begin("Procedure", h) | {
        "status": "completed",
        "code": concept(coding(SNOMED, *code), text=code[1]),
        **context(h),
        "performedDateTime": fhir_datetime(performed),
        "bodySite": [{"text": site}],
        "reasonReference": [ref("Condition", condition_id)],
    }


# Elements FHIR R4 requires (1..1): removing one makes the resource invalid for any validator.
REQUIRED = {
    "Observation": ("status", "code"),
    "MedicationRequest": ("subject", "status", "intent"),
    "Encounter": ("status", "class"),
    "Procedure": ("status", "subject"),
    "ImagingStudy": ("status", "subject"),
}


def damage(res: Resource, u_kind: float, u_detail: float, dangling: str) -> tuple[bytes, str, str]:
    """Damage one leaf resource so that a spec-following reader must reject it.

    Returns (line, kind, reason). ``u_kind``/``u_detail`` are uniform draws; ``dangling`` is a
    fresh id that exists nowhere in the export.

    * ``invalid_json``: the line was cut mid-write (a truncated export) or written as a Python
      dict repr (single quotes) by a buggy extract script.
    * ``missing_required_field``: valid JSON, but a 1..1 element of the resource is gone.
    * ``unresolvable_reference``: a valid resource whose subject or encounter points at an id
      that is not in the export (a record left over from a purged or merged chart).
    """
    rtype = res["resourceType"]
    if u_kind < 0.4:
        if u_detail < 0.7:
            text = orjson.dumps(res).decode()
            # Cut on a character boundary: the line stays valid UTF-8, only the JSON breaks.
            cut = max(1, int(len(text) * (0.15 + u_detail)))
            return text[:cut].encode(), "invalid_json", "NDJSON line truncated"
        return repr(res).encode(), "invalid_json", "line written as a Python dict repr"
    if u_kind < 0.85:
        options = REQUIRED[rtype]
        field = options[min(int(u_detail * len(options)), len(options) - 1)]
        broken = {k: v for k, v in res.items() if k != field}
        reason = f"{rtype}.{field} (required, 1..1) removed"
        return orjson.dumps(broken), "missing_required_field", reason
    target = "encounter" if "encounter" in res and u_detail < 0.5 else "subject"
    target_type = "Encounter" if target == "encounter" else "Patient"
    broken = res | {target: ref(target_type, dangling)}
    reason = f"{rtype}.{target} -> {target_type}/{dangling}, which is not in the export"
    return orjson.dumps(broken), "unresolvable_reference", reason


class NdjsonSink:
    """One resource type's NDJSON files, rolled to ``.001``, ``.002`` … like a bulk export."""

    def __init__(self, directory: Path, resource_type: str, per_file: int) -> None:
        self.directory = directory
        self.resource_type = resource_type
        self.per_file = per_file
        self.files: list[list[Any]] = []  # [path, resources written] in write order
        self._handle: IO[bytes] | None = None

    def write(self, line: bytes) -> tuple[Path, int]:
        """Append one line; returns its file and 1-based line number (the dirty locator)."""
        if self._handle is None or self.files[-1][1] == self.per_file:
            if self._handle is not None:
                self._handle.close()
            path = self.directory / f"{self.resource_type}.{len(self.files):03d}.ndjson"
            self._handle = path.open("wb")
            self.files.append([path, 0])
        self._handle.write(line + b"\n")
        self.files[-1][1] += 1
        return self.files[-1][0], self.files[-1][1]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
