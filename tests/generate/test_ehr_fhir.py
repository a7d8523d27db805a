"""The EHR writer: a FHIR R4 Bulk Data export that a spec-following reader can trust.

Read back with the field's own tools (``fhir.resources`` R4B models plus the checks those models
leave out: code enums, references), every record not listed as dirty must be valid and resolvable,
every listed one must be caught (and exactly those), features and the outcome label must be
recomputable from the files alone, and the bytes must depend on the seed only.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import importlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from mmlake.generate.cohort import ModalityRates, PatientRecord, iter_cohort
from mmlake.generate.ehr_fhir import RESOURCE_TYPES, EhrWriter
from mmlake.generate.ehr_fhir_codes import TARGETED_RXNORM, age_on
from mmlake.generate.ehr_fhir_imaging import ACCESSION_SYSTEM
from mmlake.generate.imaging_dicom import plan_studies
from mmlake.generate.truth import GenerationContext, TruthLog

SEED = 20240611
PATIENTS = 60
PER_FILE = 700  # small, so Observation and Encounter roll over to .001, .002 …
DIRTY_RATE = 0.05

MODELS = {
    name: getattr(importlib.import_module(f"fhir.resources.R4B.{name.lower()}"), name)
    for name in RESOURCE_TYPES
}
# Required bindings that the R4B models do not enforce (they type codes as plain strings).
STATUS = {
    "Encounter": {"planned", "arrived", "triaged", "in-progress", "onleave", "finished"}
    | {"cancelled", "entered-in-error", "unknown"},
    "Observation": {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}
    | {"entered-in-error", "unknown"},
    "MedicationRequest": {"active", "on-hold", "cancelled", "completed", "entered-in-error"}
    | {"stopped", "draft", "unknown"},
    "Procedure": {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed"}
    | {"entered-in-error", "unknown"},
    "ImagingStudy": {"registered", "available", "cancelled", "entered-in-error", "unknown"},
    "Consent": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
    "ResearchSubject": {"candidate", "eligible", "follow-up", "ineligible", "not-registered"}
    | {"off-study", "on-study", "on-study-intervention", "on-study-observation"}
    | {"pending-on-study", "potential-candidate", "screening", "withdrawn"},
    "ResearchStudy": {"active", "administratively-completed", "approved", "closed-to-accrual"}
    | {"closed-to-accrual-and-intervention", "completed", "disapproved", "in-review"}
    | {"temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention"}
    | {"withdrawn"},
}
INTENT = {"proposal", "plan", "order", "original-order", "reflex-order", "filler-order"} | {
    "instance-order",
    "option",
}
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
STAGE_CODES = {"258215001": 1, "258219007": 2, "258224005": 3, "258228008": 4, "396925001": 4}
WORSENED = "271299001"
IMAGING_CODES = {"77477000", "113091000"}  # SNOMED CT: CT, MR
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
FILE_NAME = re.compile(r"^(?P<type>[A-Za-z]+)\.(?P<n>\d{3})\.ndjson$")


def _generate(out: Path, seed: int, n: int, dirty_rate: float = DIRTY_RATE) -> list[PatientRecord]:
    truth = TruthLog(out)
    ctx = GenerationContext(out, seed, dirty_rate, truth)
    writer = EhrWriter(ctx, resources_per_file=PER_FILE)
    patients = list(iter_cohort(n, seed, ModalityRates()))
    for patient in patients:
        writer.add(patient)
    counts = writer.close()
    truth.close()
    assert counts["patients"] == n
    return patients


@dataclass
class Export:
    """What a spec-following reader makes of the export."""

    out: Path
    patients: list[PatientRecord]
    manifest: dict[str, Any]
    valid: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    caught: dict[tuple[str, int], str] = field(default_factory=dict)  # (file, line) -> kind
    raw: dict[tuple[str, int], bytes] = field(default_factory=dict)


def _read(out: Path, patients: list[PatientRecord]) -> Export:
    manifest = orjson.loads((out / "ehr" / "manifest.json").read_bytes())
    export = Export(out, patients, manifest)
    for item in manifest["output"]:
        rel = f"ehr/{item['url']}"
        data = (out / rel).read_bytes()
        data.decode("utf-8")  # the whole file is UTF-8, even around damaged lines
        lines = data.split(b"\n")
        assert lines[-1] == b"", "NDJSON ends with a newline"
        assert len(lines) - 1 == item["count"]
        for number, line in enumerate(lines[:-1], start=1):
            key = (rel, number)
            export.raw[key] = line
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError:
                export.caught[key] = "invalid_json"
                continue
            assert resource["resourceType"] == item["type"]
            try:
                MODELS[item["type"]].model_validate(resource)
            except ValidationError:
                export.caught[key] = "missing_required_field"
                continue
            export.valid[key] = resource
    known = {f"{r['resourceType']}/{r['id']}" for r in export.valid.values()}
    for key, resource in list(export.valid.items()):
        if not _references(resource) <= known:
            export.caught[key] = "unresolvable_reference"
            del export.valid[key]
    return export


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["reference"]} if isinstance(node.get("reference"), str) else set()
        return found.union(*(_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(v) for v in node))
    return set()


def _spec_problems(r: dict[str, Any]) -> list[str]:
    """Required elements and code bindings a real export must honour beyond the models."""
    rtype, problems = r["resourceType"], []
    if rtype in STATUS and r.get("status") not in STATUS[rtype]:
        problems.append(f"status {r.get('status')}")
    if rtype not in ("Patient", "ResearchStudy") and not _patient_ref(r).startswith("Patient/"):
        problems.append("subject")
    if "lastUpdated" not in r.get("meta", {}):
        problems.append("meta.lastUpdated")
    if rtype == "Patient":
        types = [c["code"] for i in r["identifier"] for c in i["type"]["coding"]]
        if "MR" not in types or r["gender"] not in {"male", "female", "other", "unknown"}:
            problems.append("identifier/gender")
    elif rtype == "Encounter":
        if r["class"]["code"] not in {"AMB", "IMP"} or "start" not in r["period"]:
            problems.append("class/period")
    elif rtype == "Condition":
        systems = {c["system"] for c in r["code"]["coding"]}
        if systems != {"http://hl7.org/fhir/sid/icd-10-cm", SNOMED} or "onsetDateTime" not in r:
            problems.append("code/onset")
        if r["clinicalStatus"]["coding"][0]["code"] != "active":
            problems.append("clinicalStatus")
    elif rtype == "Observation":
        if (
            not {"effectiveDateTime", "category"} <= r.keys()
            or r["code"]["coding"][0]["system"] != LOINC
        ):
            problems.append("effective/category/code")
        if not any(k.startswith("value") for k in r) and "component" not in r:
            problems.append("value")
        quantities = [r.get("valueQuantity")] + [c["valueQuantity"] for c in r.get("component", [])]
        if any(q and q["system"] != "http://unitsofmeasure.org" for q in quantities):
            problems.append("UCUM")
    elif rtype == "MedicationRequest":
        coding = r["medicationCodeableConcept"]["coding"][0]
        if r["intent"] not in INTENT or coding["system"] != RXNORM_SYSTEM:
            problems.append("intent/medication")
    elif rtype == "Procedure" and r["code"]["coding"][0]["system"] != SNOMED:
        problems.append("code")
    elif rtype == "Procedure" and _code(r) in IMAGING_CODES and _accession(r) is None:
        problems.append("accession identifier")
    elif rtype == "ImagingStudy":
        uids = [i["value"] for i in r["identifier"] if i.get("system") == "urn:dicom:uid"]
        if len(uids) != 1 or not re.fullmatch(r"urn:oid:2\.25\.\d+", uids[0]):
            problems.append("Study Instance UID")
        if _accession(r) is None or {m["system"] for m in r["modality"]} != {DCM}:
            problems.append("accession/modality")
        series = r["series"]
        if r["numberOfSeries"] != len(series) or r["numberOfInstances"] != sum(
            s["numberOfInstances"] for s in series
        ):
            problems.append("counts")
        if not all(re.fullmatch(r"2\.25\.\d+", s["uid"]) and s["bodySite"] for s in series):
            problems.append("series")
    return problems


def _code(r: dict[str, Any]) -> str:
    return r["code"]["coding"][0]["code"]


def _accession(r: dict[str, Any]) -> str | None:
    """The value of the ACSN-typed identifier (the DICOM AccessionNumber), if any."""
    for i in r.get("identifier", []):
        codes = {(c["system"], c["code"]) for c in i.get("type", {}).get("coding", [])}
        if (V2_0203, "ACSN") in codes and i["system"] == ACCESSION_SYSTEM:
            return i["value"]
    return None


def _dirty_rows(out: Path) -> list[dict[str, str]]:
    with (out / "_truth" / "dirty_records.csv").open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["modality"] == "ehr"]


def _features(out: Path) -> dict[tuple[str, str], float]:
    with (out / "_truth" / "features.csv").open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        return {
            (r["patient_id"], r["feature"]): float(r["value"])
            for r in rows
            if r["modality"] == "ehr"
        }


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    out = tmp_path_factory.mktemp("ehr")
    return _read(out, _generate(out, SEED, PATIENTS))


def _by_patient(export: Export) -> dict[str, dict[str, list[dict[str, Any]]]]:
    charts: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in export.valid.values():
        if r["resourceType"] == "ResearchStudy":  # cohort-level, nobody's chart
            continue
        pid = r["id"] if r["resourceType"] == "Patient" else _patient_ref(r)[8:]
        charts[pid][r["resourceType"]].append(r)
    return charts


def _patient_ref(r: dict[str, Any]) -> str:
    """The Patient reference: ``subject``, Consent's ``patient``, R4 ResearchSubject's
    ``individual``."""
    element = {"Consent": "patient", "ResearchSubject": "individual"}.get(r["resourceType"])
    return r.get(element or "subject", {}).get("reference", "")


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def _loinc(r: dict[str, Any]) -> str:
    return r["code"]["coding"][0]["code"]


def test_layout_and_manifest_follow_the_bulk_data_spec(export: Export) -> None:
    m = export.manifest
    assert set(m) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert m["error"] == [] and m["requiresAccessToken"] is True and "$export" in m["request"]
    files = sorted(p.name for p in (export.out / "ehr").glob("*.ndjson"))
    assert sorted(o["url"] for o in m["output"]) == files
    seen: dict[str, list[int]] = defaultdict(list)
    for o in m["output"]:
        match = FILE_NAME.match(o["url"])
        assert match and match["type"] == o["type"] and 0 < o["count"] <= PER_FILE
        seen[o["type"]].append(int(match["n"]))
    assert set(seen) == set(RESOURCE_TYPES)
    assert all(numbers == list(range(len(numbers))) for numbers in seen.values())
    assert len(seen["Observation"]) > 1, "files roll over past resources_per_file"
    newest = max(r["meta"]["lastUpdated"] for r in export.valid.values())
    assert newest < m["transactionTime"]  # same ISO format and UTC: string order is time order


def test_every_unlisted_record_is_valid_and_every_listed_one_is_caught(export: Export) -> None:
    rows = _dirty_rows(export.out)
    assert {r["kind"] for r in rows} >= {"invalid_json", "missing_required_field"}
    listed = {}
    for row in rows:
        number, key = re.fullmatch(r"line (\d+) (\w+/[0-9a-f-]{36})", row["locator"]).groups()
        listed[(row["file"], int(number))] = row["kind"]
        if row["kind"] != "invalid_json":  # the locator names the damaged resource
            resource = orjson.loads(export.raw[(row["file"], int(number))])
            assert f"{resource['resourceType']}/{resource['id']}" == key
    assert listed == export.caught
    problems = {k: p for k, r in export.valid.items() if (p := _spec_problems(r))}
    assert not problems
    # Damage only ever hits leaves: no valid record points at a damaged one.
    damaged_ids = {re.search(r"(\w+/[0-9a-f-]{36})", r["locator"])[1] for r in rows}
    assert not damaged_ids & set().union(*(_references(r) for r in export.valid.values()))


def test_every_patient_has_a_complete_chart(export: Export) -> None:
    charts = _by_patient(export)
    assert set(charts) == {p.patient_id for p in export.patients}
    biopsied = 0
    for p in export.patients:
        chart = charts[p.patient_id]
        assert len(chart["Patient"]) == 1 and chart["Patient"][0]["identifier"][0]["value"] == p.mrn
        categories = {c["category"][0]["coding"][0]["code"] for c in chart["Condition"]}
        assert "encounter-diagnosis" in categories
        statuses = {m["status"] for m in chart["MedicationRequest"]}
        assert statuses and statuses <= {"active", "completed", "stopped"}
        # Procedures may be among the damaged leaves, so these are checked loosely.
        codes = {c["code"]["coding"][0]["code"] for c in chart["Procedure"]}
        biopsied += "86273004" in codes
        if not p.has("imaging"):
            assert not codes & {"77477000", "113091000"}  # CT / MR staging only with imaging
    assert biopsied >= 0.9 * len(export.patients)


def test_imaging_visits_are_the_planned_dicom_studies(export: Export) -> None:
    """One Procedure per study of ``plan_studies`` (the DICOM writer's plan), never damaged."""
    charts = _by_patient(export)
    restaged = linked = 0
    for p in export.patients:
        chart = charts[p.patient_id]
        plans = plan_studies(SEED, p, 64)  # 64 px: GenerationContext's default image size
        procedures = [r for r in chart["Procedure"] if _code(r) in IMAGING_CODES]
        assert sorted((r["performedDateTime"], _accession(r)) for r in procedures) == sorted(
            (f"{plan.when.isoformat()}-05:00", plan.accession) for plan in plans
        )
        restaged += len(plans) > 1
        by_accession = {plan.accession: plan for plan in plans}
        by_procedure = {r["id"]: by_accession[_accession(r)] for r in procedures}
        for study in chart["ImagingStudy"]:  # a damaged one may be missing
            plan = by_procedure[study["procedureReference"]["reference"].split("/")[1]]
            assert _accession(study) == plan.accession
            assert study["identifier"][0]["value"] == f"urn:oid:{plan.study_uid}"
            assert study["started"] == f"{plan.when.isoformat()}-05:00"
            assert study["numberOfInstances"] == plan.geometry.n_slices
            assert study["series"][0]["uid"] == plan.series_uid
            assert study["series"][0]["number"] == plan.series_number
            assert study["modality"][0]["code"] == plan.modality
            linked += 1
    n_studies = sum(len(plan_studies(SEED, p, 64)) for p in export.patients)
    assert restaged > 0 and linked >= 0.8 * n_studies


def test_features_are_recomputable_from_the_files(export: Export) -> None:
    truth = _features(export.out)
    charts = _by_patient(export)
    for p in export.patients:
        chart = charts[p.patient_id]
        cancer = next(c for c in chart["Condition"] if "stage" in c)
        onset = _date(cancer["onsetDateTime"])
        comorbid = [c for c in chart["Condition"] if c is not cancer]
        stage_code = cancer["stage"][0]["summary"]["coding"][0]["code"]
        at_dx = {
            _loinc(o): o for o in chart["Observation"] if _date(o["effectiveDateTime"]) == onset
        }
        meds = {
            m["medicationCodeableConcept"]["coding"][0]["code"] for m in chart["MedicationRequest"]
        }
        birth = dt.date.fromisoformat(chart["Patient"][0]["birthDate"])
        recomputed = {
            "stage": STAGE_CODES[stage_code],
            "age_at_diagnosis": age_on(birth, onset),
            "ldh_at_diagnosis": at_dx["2532-0"]["valueQuantity"]["value"],
            "albumin_at_diagnosis": at_dx["1751-7"]["valueQuantity"]["value"],
            "ecog": at_dx["89247-1"]["valueInteger"],
            "targeted_therapy": int(bool(meds & TARGETED_RXNORM)),
            "n_comorbidities": len(comorbid),
        }
        assert STAGE_CODES[at_dx["21908-9"]["valueCodeableConcept"]["coding"][0]["code"]] == p.stage
        for name, value in recomputed.items():
            assert truth[(p.patient_id, name)] == pytest.approx(value), name
        assert (recomputed["stage"], recomputed["ecog"]) == (p.stage, p.ecog)
        assert recomputed["targeted_therapy"] == int(p.targeted_therapy)
        assert onset == p.diagnosis_date


def test_outcome_label_is_exactly_recoverable(export: Export) -> None:
    charts = _by_patient(export)
    for p in export.patients:
        chart = charts[p.patient_id]
        statuses = sorted(
            (_date(o["effectiveDateTime"]), o["valueCodeableConcept"]["coding"][0]["code"])
            for o in chart["Observation"]
            if _loinc(o) == "97509-4"
        )
        assert statuses, "every patient is restaged"
        worsened = [d for d, code in statuses if code == WORSENED]
        label = int(any((d - p.diagnosis_date).days <= 365 for d in worsened))
        assert label == p.label
        if p.label:
            assert worsened[0] == p.progression_date
            assert all(code == WORSENED for d, code in statuses if d >= p.progression_date)


def test_the_ldh_signal_tracks_burden_and_nutrition(export: Export) -> None:
    truth = _features(export.out)
    ldh = np.log([truth[(p.patient_id, "ldh_at_diagnosis")] for p in export.patients])
    driver = [0.22 * p.latent.burden + 0.18 * p.latent.nutrition for p in export.patients]
    assert np.corrcoef(ldh, driver)[0, 1] > 0.8
    albumin = [truth[(p.patient_id, "albumin_at_diagnosis")] for p in export.patients]
    assert np.corrcoef(albumin, [p.latent.nutrition for p in export.patients])[0, 1] < -0.6
    assert all(math.isfinite(v) for v in ldh)


def test_non_ascii_names_are_plain_utf8_json(export: Export) -> None:
    accented = [p for p in export.patients if not p.family_name.isascii()]
    assert accented, "the cohort for this seed has a Müller"
    raw = (export.out / "ehr" / "Patient.000.ndjson").read_bytes()
    for p in accented:
        line = next(line for line in raw.split(b"\n") if p.patient_id.encode() in line)
        assert p.family_name.encode("utf-8") in line  # not \u-escaped
        assert orjson.loads(line)["name"][0]["family"] == p.family_name


def _digest(root: Path) -> dict[str, str]:
    paths = [*sorted((root / "ehr").iterdir()), root / "_truth" / "dirty_records.csv"]
    paths.append(root / "_truth" / "features.csv")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        out.mkdir()
        _generate(out, seed, 25)
    assert _digest(a) == _digest(b)
    assert _digest(a)["Patient.000.ndjson"] != _digest(c)["Patient.000.ndjson"]


def test_clinical_content_does_not_depend_on_the_dirty_rate(tmp_path: Path) -> None:
    dirty, clean = tmp_path / "dirty", tmp_path / "clean"
    for out, rate in ((dirty, 0.2), (clean, 0.0)):
        out.mkdir()
        _generate(out, SEED, 15, dirty_rate=rate)
    assert not _dirty_rows(clean)
    damaged = {(r["file"], int(r["locator"].split()[1])) for r in _dirty_rows(dirty)}
    assert damaged
    for path in sorted((clean / "ehr").glob("*.ndjson")):
        rel = f"ehr/{path.name}"
        clean_lines = path.read_bytes().split(b"\n")
        dirty_lines = (dirty / rel).read_bytes().split(b"\n")
        assert len(clean_lines) == len(dirty_lines)
        for number, (x, y) in enumerate(zip(clean_lines, dirty_lines, strict=True), start=1):
            assert (x == y) != ((rel, number) in damaged)
