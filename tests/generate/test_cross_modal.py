"""Provenance across modalities: a radiology report and an EHR Procedure trace to each DICOM study.

A tumour board follows a report to its images by accession number and date. The cohort is
generated as a user does (every modality, through ``generate_cohort``) and read back with each
modality's own tools: pydicom headers, FHIR NDJSON, the notes manifest and text. Every DICOM study
must have an imaging Procedure (and ImagingStudy) in the EHR and a radiology report with the same
date and accession number, and the report must measure the lesion the images show.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest

from mmlake.generate.cohort import iter_cohort
from mmlake.generate.imaging_dicom import plan_studies
from mmlake.generate.runner import GenerationConfig, generate_cohort

SEED = 20250917
PATIENTS = 45
IMAGE_SIZE = 32
CONFIG = GenerationConfig(patients=PATIENTS, seed=SEED, image_size=IMAGE_SIZE, dirty_rate=0.02)
IMAGING_CODES = {"77477000", "113091000"}  # SNOMED CT: CT, MR
ACSN = ("http://terminology.hl7.org/CodeSystem/v2-0203", "ACSN")
# The date styles clinicians type (notes_templates.fmt_date).
DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%B %d, %Y", "%m/%d/%y")
AXES = re.compile(r"(\d+) x (\d+) mm")


@dataclass
class Study:
    """One DICOM study as its headers tell it."""

    mrn: str
    accession: str
    date: dt.date
    time: str
    uid: str
    series_uid: str
    files: int = 0


@dataclass
class Cohort:
    out: Path
    studies: dict[str, Study] = field(default_factory=dict)  # by StudyInstanceUID
    patient_ids: dict[str, str] = field(default_factory=dict)  # MRN -> patient id
    with_notes: set[str] = field(default_factory=set)  # MRNs (notes are at a 95% rate)
    dirty: list[dict[str, str]] = field(default_factory=list)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    out = tmp_path_factory.mktemp("cross_modal")
    generate_cohort(CONFIG, out)
    c = Cohort(out)
    for path in sorted((out / "imaging").rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)  # truncated files keep their header
        study = c.studies.setdefault(
            ds.StudyInstanceUID,
            Study(
                ds.PatientID,
                ds.AccessionNumber,
                dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date(),
                ds.StudyTime,
                ds.StudyInstanceUID,
                ds.SeriesInstanceUID,
            ),
        )
        assert (ds.PatientID, ds.AccessionNumber, ds.StudyTime) == (
            study.mrn,
            study.accession,
            study.time,
        )
        study.files += 1
    patients = _rows(out / "_truth" / "patients.csv")
    c.patient_ids = {r["mrn"]: r["patient_id"] for r in patients}
    c.with_notes = {r["mrn"] for r in patients if r["has_notes"] == "1"}
    c.dirty = _rows(out / "_truth" / "dirty_records.csv")
    return c


def _resources(out: Path, resource_type: str) -> list[dict[str, Any]]:
    """Every parseable line of the type's NDJSON files (damaged leaves may be unparseable)."""
    manifest = orjson.loads((out / "ehr" / "manifest.json").read_bytes())
    found = []
    for item in manifest["output"]:
        if item["type"] != resource_type:
            continue
        for line in (out / "ehr" / item["url"]).read_bytes().splitlines():
            try:
                found.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return found


def _accession(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier", []):
        codings = identifier.get("type", {}).get("coding", [])
        if any((c["system"], c["code"]) == ACSN for c in codings):
            return identifier["value"]
    return None


def _field(text: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}: (.+)$", text, re.MULTILINE)
    assert match, label
    return match[1]


def _parse_date(value: str) -> dt.date:
    for style in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, style).date()
        except ValueError:
            continue
    raise AssertionError(f"unparseable date {value!r}")


def test_the_cohort_has_staging_and_restaging_studies(cohort: Cohort) -> None:
    per_patient = defaultdict(int)
    for study in cohort.studies.values():
        per_patient[study.mrn] += 1
    assert len(per_patient) >= PATIENTS // 2
    assert set(per_patient.values()) == {1, 2}, "some patients are restaged"


def test_every_study_is_an_ehr_procedure_and_imaging_study(cohort: Cohort) -> None:
    procedures = {
        (r["subject"]["reference"], _accession(r)): r
        for r in _resources(cohort.out, "Procedure")
        if r["code"]["coding"][0]["code"] in IMAGING_CODES
    }
    assert len(procedures) == len(cohort.studies), "one imaging Procedure per DICOM study"
    imaging_studies = {}
    for r in _resources(cohort.out, "ImagingStudy"):
        uids = [i["value"] for i in r["identifier"] if i["system"] == "urn:dicom:uid"]
        imaging_studies[uids[0].removeprefix("urn:oid:")] = r
    for study in cohort.studies.values():
        patient = f"Patient/{cohort.patient_ids[study.mrn]}"
        procedure = procedures[(patient, study.accession)]  # imaging Procedures are never damaged
        performed = dt.datetime.fromisoformat(procedure["performedDateTime"])
        assert performed.date() == study.date
        assert performed.strftime("%H%M%S") == study.time
        assert performed.astimezone(dt.UTC).date() == study.date  # same day in UTC, too
        r = imaging_studies.get(study.uid)
        if r is None:  # an ImagingStudy line cut by the dirty-data pass
            assert any("ImagingStudy/" in row["locator"] for row in cohort.dirty)
            continue
        assert _accession(r) == study.accession
        assert r["started"] == procedure["performedDateTime"]
        assert r["procedureReference"]["reference"] == f"Procedure/{procedure['id']}"
        assert r["numberOfInstances"] == study.files  # one instance per DICOM file
        assert r["series"][0]["uid"] == study.series_uid


def test_every_study_has_its_radiology_report(cohort: Cohort) -> None:
    notes_dir = cohort.out / "notes"
    reports = defaultdict(list)
    for row in _rows(notes_dir / "manifest.csv"):
        if row["note_type"] == "radiology_report":
            reports[row["patient_mrn"]].append(row)
    studies = [s for s in cohort.studies.values() if s.mrn in cohort.with_notes]
    assert sum(map(len, reports.values())) == len(studies), "one report per study"
    empty = {r["locator"] for r in cohort.dirty if r["kind"] == "empty_note"}
    features = {
        r["patient_id"]: float(r["value"])
        for r in _rows(cohort.out / "_truth" / "features.csv")
        if r["feature"] == "lesion_diameter_mm"
    }
    checked = 0
    for study in studies:
        (row,) = [
            r
            for r in reports[study.mrn]
            if dt.datetime.fromisoformat(r["note_datetime"]).date() == study.date
        ]
        text = (notes_dir / row["file"]).read_text(encoding="utf-8")
        if row["note_id"] in empty:
            assert not text.strip()
            continue
        assert _field(text, "Accession #") == study.accession
        assert _parse_date(_field(text, "Exam date")) == study.date
        staging = study.date == min(s.date for s in cohort.studies.values() if s.mrn == study.mrn)
        if staging:  # the truth describes the staging study
            long_axis = int(AXES.search(text)[1])
            assert abs(long_axis - features[cohort.patient_ids[study.mrn]]) <= 1
            checked += 1
    assert checked >= len({s.mrn for s in studies}) - len(empty)


def test_restaging_reports_measure_both_studies_consistently(cohort: Cohort) -> None:
    """The follow-up report: sizes from the two planned lesions, and an impression that agrees."""
    notes_dir = cohort.out / "notes"
    manifest = _rows(notes_dir / "manifest.csv")
    restaged = 0
    for patient in iter_cohort(PATIENTS, SEED, CONFIG.effective_rates()):
        plans = plan_studies(SEED, patient, IMAGE_SIZE)
        if len(plans) < 2 or not patient.has("notes"):
            continue
        staging, restaging = plans
        (row,) = [
            r
            for r in manifest
            if r["patient_mrn"] == patient.mrn
            and r["note_type"] == "radiology_report"
            and r["note_datetime"].startswith(restaging.when.date().isoformat())
        ]
        text = (notes_dir / row["file"]).read_text(encoding="utf-8")
        if not text.strip():
            continue  # a dirty (empty) note
        restaged += 1
        assert staging.accession in text.split("COMPARISON:")[1].split("FINDINGS:")[0]
        (now_long, _), (before_long, _) = (tuple(map(int, m)) for m in AXES.findall(text)[:2])
        assert abs(now_long - restaging.lesion.diameter_mm) <= 0.5
        assert abs(before_long - staging.lesion.diameter_mm) <= 0.5
        impression = text.split("IMPRESSION:\n")[1].splitlines()[0]
        assert f"{now_long} mm" in impression and f"{before_long} mm" in impression
        change = (now_long - before_long) / before_long
        if re.search(r"Interval increase|has enlarged from", impression):
            assert change >= 0.1, impression
        elif re.search(r"Interval decrease|has decreased from", impression):
            assert change <= -0.1, impression
        else:
            assert re.search(r"Stable|No significant interval change", impression), impression
            assert abs(change) < 0.1, impression
    assert restaged > 0
