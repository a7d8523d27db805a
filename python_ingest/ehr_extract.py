"""Flatten the clinical resource types into the typed bronze rows (schema order, no lineage).

Only what silver/gold models select is flattened; everything else stays in ``raw_json``.
Codings are picked by code system, never by position, since EHRs order them freely:
ICD-10-CM (billing) and SNOMED CT (clinical) on Conditions, LOINC on Observations, RxNorm on
MedicationRequests. Accessors are defensive (wrong JSON types give null, never an exception)
because only these types are model-validated and a reader must not trust any file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from python_ingest.ehr_documents import note_text
from python_ingest.ehr_refs import Resolver

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MRN_TYPE = "MR"  # HL7 v2 table 0203 identifier type "Medical record number"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"
_VALUE_TYPES = (
    "Quantity",
    "CodeableConcept",
    "String",
    "Integer",
    "Boolean",
    "DateTime",
    "Period",
    "Range",
    "Ratio",
    "SampledData",
    "Time",
)


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> dict[str, Any]:
    """The first element of a 0..* element (or the element itself when sent as one object)."""
    if isinstance(value, list):
        return _d(value[0]) if value else {}
    return _d(value)


def timestamp(value: Any) -> dt.datetime | None:
    """A FHIR instant/dateTime as an aware datetime (date-only: midnight UTC; partial: None)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    # FHIR requires an offset whenever a time is given; a value without one is read as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def day(value: Any) -> dt.date | None:
    """The calendar date as written (before any time-zone shift), when it has day precision."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def coding(concept: Any, system: str | None = None) -> dict[str, Any]:
    """The first Coding of a CodeableConcept (of ``system`` when given), or {}."""
    for c in _d(concept).get("coding") or ():
        if isinstance(c, dict) and (system is None or c.get("system") == system):
            return c
    return {}


def label(concept: Any) -> str | None:
    """What a person would read: the concept's text, else its first coding's display."""
    return _s(_d(concept).get("text")) or _s(coding(concept).get("display"))


def _triple(concept: Any) -> tuple[str | None, str | None, str | None]:
    c = coding(concept)
    return _s(c.get("system")), _s(c.get("code")), _s(c.get("display"))


def _pair(concept: Any, system: str) -> tuple[str | None, str | None]:
    c = coding(concept, system)
    return _s(c.get("code")), _s(c.get("display"))


def _ref(element: Any) -> str | None:
    return _s(_first(element).get("reference"))


def _ext_text(resource: dict[str, Any], url: str) -> str | None:
    """The ``text`` sub-extension of a complex US Core extension (race, ethnicity)."""
    for ext in resource.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            for sub in ext.get("extension") or ():
                if isinstance(sub, dict) and sub.get("url") == "text":
                    return _s(sub.get("valueString"))
    return None


def in_use(items: list[dict[str, Any]], preferred: tuple[str, ...]) -> dict[str, Any]:
    """The name or address to show: of the ``preferred`` uses first, in order, and never one
    marked ``old`` (no longer in use: a maiden name, a former address) while another is not."""
    current = [i for i in items if i.get("use") != "old"] or items
    for use in preferred:
        found = next((i for i in current if i.get("use") == use), None)
        if found is not None:
            return found
    return current[0] if current else {}


def patient_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    mrn: dict[str, Any] = {}
    for ident in r.get("identifier") or ():
        if isinstance(ident, dict) and coding(ident.get("type")).get("code") == MRN_TYPE:
            mrn = ident
            break
    name = in_use([n for n in r.get("name") or () if isinstance(n, dict)], ("official", "usual"))
    given = [g for g in name.get("given") or () if isinstance(g, str)]
    phone = next(
        (t for t in r.get("telecom") or () if isinstance(t, dict) and t.get("system") == "phone"),
        {},
    )
    address = in_use([a for a in r.get("address") or () if isinstance(a, dict)], ("home",))
    lines = [x for x in address.get("line") or () if isinstance(x, str)]
    birth = _s(r.get("birthDate"))
    deceased = r.get("deceasedBoolean")
    deceased_at = timestamp(r.get("deceasedDateTime"))
    if not isinstance(deceased, bool):
        deceased = True if "deceasedDateTime" in r else None
    return (
        _s(r.get("id")),
        _s(mrn.get("value")),
        _s(mrn.get("system")),
        _s(name.get("family")),
        " ".join(given) or None,
        _s(r.get("gender")),
        day(birth),
        int(birth[:4]) if birth and birth[:4].isdigit() else None,
        deceased,
        deceased_at,
        _s(phone.get("value")),
        ", ".join(lines) or None,
        _s(address.get("city")),
        _s(address.get("state")),
        _s(address.get("postalCode")),
        _s(address.get("country")),
        _ext_text(r, US_CORE + "race"),
        _ext_text(r, US_CORE + "ethnicity"),
    )


def encounter_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    # R4 Encounter.class is one Coding (R5 made it a list of CodeableConcepts).
    klass = _first(r.get("class"))
    kind = _first(r.get("type"))
    period = _d(r.get("period"))
    provider = _d(r.get("serviceProvider"))
    return (
        _s(r.get("status")),
        _s(klass.get("system")),
        _s(klass.get("code")),
        _s(klass.get("display")),
        *_triple(kind),
        _s(kind.get("text")),
        *_triple(_first(r.get("reasonCode")))[1:],
        timestamp(period.get("start")),
        timestamp(period.get("end")),
        _s(provider.get("display")) or _s(provider.get("reference")),
    )


def condition_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    code = r.get("code")
    stage = _first(r.get("stage"))
    onset = r.get("onsetDateTime") or _d(r.get("onsetPeriod")).get("start")
    abatement = r.get("abatementDateTime") or _d(r.get("abatementPeriod")).get("start")
    return (
        rv.ref_id(r.get("encounter"), "Encounter"),
        _s(coding(r.get("clinicalStatus")).get("code")),
        _s(coding(r.get("verificationStatus")).get("code")),
        _s(coding(_first(r.get("category"))).get("code")),
        *_triple(code),
        _s(_d(code).get("text")),
        *_pair(code, ICD10CM),
        *_pair(code, SNOMED),
        timestamp(onset),
        day(onset),
        timestamp(abatement),
        timestamp(r.get("recordedDate")),
        label(stage.get("summary")),
        *_triple(stage.get("summary"))[:2],
        _s(coding(stage.get("type")).get("code")),
    )


def _value(r: dict[str, Any]) -> tuple[Any, ...]:
    """value[x] (the one that is present) as the ten value columns."""
    value_type = next((t for t in _VALUE_TYPES if f"value{t}" in r), None)
    q = _d(r.get("valueQuantity"))
    cc = r.get("valueCodeableConcept")
    c = coding(cc)
    return (
        value_type,
        _num(q.get("value")),
        _s(q.get("comparator")),
        _s(q.get("unit")) or _s(q.get("code")),
        _s(q.get("code")),
        _s(c.get("code")),
        _s(c.get("system")),
        _s(c.get("display")) or _s(_d(cc).get("text")),
        _s(r.get("valueString")),
        _int(r.get("valueInteger")),
        r.get("valueBoolean") if isinstance(r.get("valueBoolean"), bool) else None,
    )


def _component(part: Any) -> dict[str, Any]:
    part = _d(part)
    system, code, display = _triple(part.get("code"))
    q = _d(part.get("valueQuantity"))
    c = coding(part.get("valueCodeableConcept"))
    return {
        "code_system": system,
        "code": code,
        "code_display": display,
        "value_quantity": _num(q.get("value")),
        "value_unit": _s(q.get("unit")) or _s(q.get("code")),
        "value_code": _s(c.get("code")),
        "value_code_display": _s(c.get("display")),
        "value_string": _s(part.get("valueString")),
    }


def observation_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    code = r.get("code")
    effective = (
        r.get("effectiveDateTime")
        or r.get("effectiveInstant")
        or _d(r.get("effectivePeriod")).get("start")
    )
    ranges = _first(r.get("referenceRange"))
    components = r.get("component")
    return (
        rv.ref_id(r.get("encounter"), "Encounter"),
        _s(r.get("status")),
        _s(coding(_first(r.get("category"))).get("code")),
        *_triple(code),
        _s(_d(code).get("text")),
        *_pair(code, LOINC),
        *_value(r),
        _s(coding(_first(r.get("interpretation"))).get("code")),
        _num(_d(ranges.get("low")).get("value")),
        _num(_d(ranges.get("high")).get("value")),
        timestamp(effective),
        day(effective),
        timestamp(r.get("issued")),
        _ref(r.get("focus")),
        [_component(p) for p in components] if isinstance(components, list) else None,
    )


def _medication(r: dict[str, Any]) -> tuple[Any, ...]:
    """RxNorm code/display and text, from medicationCodeableConcept or a contained Medication."""
    concept = r.get("medicationCodeableConcept")
    reference = _s(_d(r.get("medicationReference")).get("reference"))
    if concept is None and reference and reference.startswith("#"):
        for res in r.get("contained") or ():
            if isinstance(res, dict) and f"#{res.get('id')}" == reference:
                concept = res.get("code")
    return (*_pair(concept, RXNORM), label(concept), reference)


def medication_request_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    dosage = [_s(_d(d).get("text")) for d in r.get("dosageInstruction") or ()]
    reason = _first(r.get("reasonCode"))
    return (
        rv.ref_id(r.get("encounter"), "Encounter"),
        _s(r.get("status")),
        _s(r.get("intent")),
        *_medication(r),
        timestamp(r.get("authoredOn")),
        " | ".join(t for t in dosage if t) or None,
        label(r.get("statusReason")),
        _s(coding(reason).get("code")),
        label(reason),
        _ref(r.get("reasonReference")),
        rv.ref_id(r.get("priorPrescription"), "MedicationRequest"),
    )


def procedure_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    code = r.get("code")
    period = _d(r.get("performedPeriod"))
    identifiers = [
        {
            "system": _s(i.get("system")),
            "value": _s(i.get("value")),
            "type_code": _s(coding(i.get("type")).get("code")),
        }
        for i in r.get("identifier") or ()
        if isinstance(i, dict)
    ]
    return (
        rv.ref_id(r.get("encounter"), "Encounter"),
        _s(r.get("status")),
        *_triple(code),
        _s(_d(code).get("text")),
        timestamp(r.get("performedDateTime") or period.get("start")),
        timestamp(period.get("end")),
        label(_first(r.get("bodySite"))),
        _s(coding(_first(r.get("reasonCode"))).get("code")),
        _ref(r.get("reasonReference")),
        identifiers or None,
    )


def document_reference_row(r: dict[str, Any], rv: Resolver) -> tuple[Any, ...]:
    """A clinical note delivered through FHIR, with its plain text decoded (``ehr_documents``)."""
    doc_type = r.get("type")
    context = _d(r.get("context"))
    period = _d(context.get("period"))
    author = _first(r.get("author"))
    note = note_text(r.get("content"))
    return (
        rv.ref_id(context.get("encounter"), "Encounter"),
        _s(r.get("status")),
        _s(r.get("docStatus")),
        *_triple(doc_type),
        _s(_d(doc_type).get("text")),
        *_pair(doc_type, LOINC),
        label(_first(r.get("category"))),
        timestamp(r.get("date")),
        timestamp(period.get("start")),
        timestamp(period.get("end")),
        _s(author.get("reference")),
        _s(author.get("display")),
        note.content_type,
        note.url,
        note.title,
        note.text,
        note.status,
    )


# resourceType -> (typed table, row builder, whether the row starts with id and patient_ref).
# Rows leave out the shared parts (id and patient_ref where flagged, last_updated, lineage):
# the reader adds those, from the values it already put in ``ehr_resources``.
Extractor = Callable[[dict[str, Any], Resolver], tuple[Any, ...]]
EXTRACTORS: dict[str, tuple[str, Extractor, bool]] = {
    "Patient": ("ehr_patients", patient_row, False),
    "Encounter": ("ehr_encounters", encounter_row, True),
    "Condition": ("ehr_conditions", condition_row, True),
    "Observation": ("ehr_observations", observation_row, True),
    "MedicationRequest": ("ehr_medication_requests", medication_request_row, True),
    "Procedure": ("ehr_procedures", procedure_row, True),
    "DocumentReference": ("ehr_document_references", document_reference_row, True),
}
