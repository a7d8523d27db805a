"""The clinical-notes writer, checked the way a note-ingestion job would read its output.

The manifest is read with ``csv``, every note as strict UTF-8; the ground truth under ``_truth``
says which notes are dirty, which concept mentions each note holds and which features a reader
should be able to recompute from the text.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from scipy.stats import spearmanr

from mmlake.generate.cohort import ModalityRates, PatientRecord, iter_cohort
from mmlake.generate.imaging_dicom import plan_studies
from mmlake.generate.notes import MANIFEST_COLUMNS, NOTE_TYPES, NotesWriter
from mmlake.generate.notes_lexicon import SYMPTOMS
from mmlake.generate.truth import GenerationContext, TruthLog

SEED = 20240611
N_PATIENTS = 300
SECTION_HEADERS = (
    "CHIEF COMPLAINT",
    "HISTORY OF PRESENT ILLNESS",
    "PAST MEDICAL HISTORY",
    "FAMILY HISTORY",
    "SOCIAL HISTORY",
    "MEDICATIONS",
    "REVIEW OF SYSTEMS",
    "PHYSICAL EXAM",
    "ASSESSMENT AND PLAN",
    "IMPRESSION",
    "FINDINGS",
    "DIAGNOSIS",
)
LOINC = {
    "oncology_consult": "11488-4",
    "progress_note": "11506-3",
    "radiology_report": "18748-4",
    "pathology_report": "11526-1",
}
CATEGORIES = {"symptom", "family_history", "diagnosis", "medication", "procedure", "ecog"}
FLAGS = ("negated", "uncertain", "historical", "hypothetical", "family")
# The forms the writer uses for ECOG: "ECOG 1", "ECOG PS: 1", "ECOG performance status of 1", ...
ECOG_RE = re.compile(r"\bECOG(?: performance status(?: of| is)?| PS:?)? ([0-4])\b")
NEGATION_CUES = re.compile(r"\b(no|denies|negative|not|without)\b", re.IGNORECASE)


def _generate(out: Path, n: int, seed: int, rate: float = 0.05) -> list[PatientRecord]:
    truth = TruthLog(out)
    ctx = GenerationContext(out, seed, rate, truth)
    writer = NotesWriter(ctx)
    patients = []
    for patient in iter_cohort(n, seed, ModalityRates()):
        truth.patient(patient)
        writer.add(patient)
        patients.append(patient)
    counts = writer.close()
    truth.close()
    assert counts["records"] == counts["files"] - 1
    return patients


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("notes")
    patients = _generate(out, N_PATIENTS, SEED)
    manifest = _rows(out / "notes" / "manifest.csv")
    texts = {
        row["note_id"]: (out / "notes" / row["file"]).read_bytes().decode("utf-8", errors="strict")
        for row in manifest
    }
    return {
        "out": out,
        "patients": patients,
        "manifest": manifest,
        "texts": texts,
        "dirty": [
            r for r in _rows(out / "_truth" / "dirty_records.csv") if r["modality"] == "notes"
        ],
        "mentions": _rows(out / "_truth" / "note_mentions.csv"),
        "features": [r for r in _rows(out / "_truth" / "features.csv") if r["modality"] == "notes"],
    }


def test_manifest_parses_and_every_file_exists(cohort: dict) -> None:
    out, manifest = cohort["out"], cohort["manifest"]
    with (out / "notes" / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == MANIFEST_COLUMNS
    assert {k: v[0] for k, v in NOTE_TYPES.items()} == LOINC
    by_mrn = {p.mrn: p for p in cohort["patients"]}
    assert len({row["note_id"] for row in manifest}) == len(manifest)
    order = [by_mrn[row["patient_mrn"]].index for row in manifest]
    assert order == sorted(order), "rows are streamed in cohort order"
    for row in manifest:
        patient = by_mrn[row["patient_mrn"]]
        assert patient.has("notes")
        assert row["loinc_document_code"] == LOINC[row["note_type"]]
        assert re.fullmatch(r"NOTE-\d{7}-\d{2}", row["note_id"])
        assert re.fullmatch(r"[A-Z][A-Za-z'-]+, [A-Z][a-z]+ MD", row["author"])
        when = dt.datetime.fromisoformat(row["note_datetime"])
        assert 0 <= (when.date() - patient.diagnosis_date).days <= 365
        assert (out / "notes" / row["file"]).is_file()
    per_patient = collections.Counter(row["patient_mrn"] for row in manifest)
    assert set(per_patient.values()) <= set(range(2, 7))
    assert set(per_patient) == {p.mrn for p in cohort["patients"] if p.has("notes")}


def test_dirty_notes_are_exactly_the_empty_ones(cohort: dict) -> None:
    empty = {note_id for note_id, text in cohort["texts"].items() if not text.strip()}
    listed = {row["locator"] for row in cohort["dirty"]}
    assert listed, "a 5% dirty rate over ~1,200 notes must corrupt some"
    assert empty == listed
    files = {row["note_id"]: "notes/" + row["file"] for row in cohort["manifest"]}
    for row in cohort["dirty"]:
        assert row["kind"] == "empty_note"
        assert row["file"] == files[row["locator"]]


def test_clean_notes_have_a_section_header_and_the_mrn(cohort: dict) -> None:
    for row in cohort["manifest"]:
        text = cohort["texts"][row["note_id"]]
        if not text.strip():
            continue
        lines = set(text.splitlines())
        assert any(f"{header}:" in lines for header in SECTION_HEADERS), row["note_id"]
        assert row["patient_mrn"] in text


def test_every_mention_is_in_its_note(cohort: dict) -> None:
    texts = cohort["texts"]
    by_note = collections.defaultdict(list)
    for m in cohort["mentions"]:
        text = texts[m["note_id"]]
        assert m["text"] and m["text"] in text, (m["note_id"], m["text"])
        assert f"\n{m['section']}:\n" in text
        assert m["category"] in CATEGORIES
        assert all(m[flag] in ("0", "1") for flag in FLAGS)
        by_note[m["note_id"]].append(m)
        if m["category"] == "symptom" and m["negated"] == "1":
            sentences = re.split(r"(?<=[.;])\s", text)
            assert any(m["text"] in s and NEGATION_CUES.search(s) for s in sentences)
    # No unlogged symptom words: every lexicon term in a note lies inside a logged mention.
    terms = {t for s in SYMPTOMS for t in s.surfaces}
    for note_id, text in texts.items():
        logged = [m["text"].lower() for m in by_note[note_id]]
        for term in terms:
            if re.search(rf"\b{re.escape(term)}\b", text, re.IGNORECASE):
                assert any(term in surface for surface in logged), (note_id, term)


def test_features_are_recomputable_from_the_notes(cohort: dict) -> None:
    by_mrn = {p.mrn: p for p in cohort["patients"]}
    by_id = {p.patient_id: p for p in cohort["patients"]}
    features = collections.defaultdict(dict)
    for row in cohort["features"]:
        features[row["patient_id"]][row["feature"]] = float(row["value"])
    affirmed, negated = collections.defaultdict(set), collections.Counter()
    for m in cohort["mentions"]:
        if m["category"] == "symptom" and not any(m[f] == "1" for f in FLAGS):
            affirmed[m["patient_id"]].add(m["concept"])
        negated[m["patient_id"]] += m["negated"] == "1"
    ecog_values, notes = collections.defaultdict(set), collections.Counter()
    for row in cohort["manifest"]:
        patient = by_mrn[row["patient_mrn"]]
        notes[patient.patient_id] += 1
        ecog_values[patient.patient_id] |= set(ECOG_RE.findall(cohort["texts"][row["note_id"]]))
    assert set(features) == {p.patient_id for p in cohort["patients"] if p.has("notes")}
    for pid, values in features.items():
        assert values["n_affirmed_symptoms"] == len(affirmed[pid])
        assert values["n_negated_mentions"] == negated[pid]
        assert values["n_notes"] == notes[pid]
        # ECOG in the text is the patient's ECOG, as in the EHR.
        assert ecog_values[pid] <= {str(by_id[pid].ecog)}
        if ecog_values[pid]:
            assert values["ecog_mentioned"] == by_id[pid].ecog
        else:
            assert "ecog_mentioned" not in values


def test_radiology_reports_are_the_planned_imaging_studies(cohort: dict) -> None:
    """One report per ``plan_studies`` study: its accession, its day, its lesion (whole mm)."""
    reports = collections.defaultdict(list)
    for row in cohort["manifest"]:
        if row["note_type"] == "radiology_report":
            reports[row["patient_mrn"]].append(row)
    restaged = 0
    for patient in cohort["patients"]:
        if not patient.has("notes"):
            continue
        plans = plan_studies(SEED, patient, 64)  # 64 px: GenerationContext's default
        rows = sorted(reports[patient.mrn], key=lambda row: row["note_datetime"])
        assert len(rows) == len(plans)
        restaged += len(plans) == 2
        for plan, row in zip(plans, rows, strict=True):
            signed = dt.datetime.fromisoformat(row["note_datetime"])
            assert signed.date() == plan.when.date() and signed > plan.when
            text = cohort["texts"][row["note_id"]]
            if not text.strip():  # a dirty (empty) note
                continue
            assert f"\nAccession #: {plan.accession}\n" in text
            long_axis = int(re.search(r"(\d+) x \d+ mm", text)[1])
            assert abs(long_axis - plan.lesion.diameter_mm) <= 0.5
            if plan.ordinal == 1:  # restaging compares with the staging study
                assert f"accession {plans[0].accession}" in text
            if patient.cancer.key in ("nsclc", "glioblastoma"):  # the imaged primary's side
                # (as staging shows it: a restaging brain lesion is re-placed, maybe across)
                right = plans[0].lesion.center[0] < 0  # LPS: the patient's right at negative x
                assert ("in the right " in text, "in the left " in text) == (right, not right)
    assert restaged > 0


def test_symptom_burden_signal(cohort: dict) -> None:
    latent = {p.patient_id: p.latent.symptoms for p in cohort["patients"]}
    pairs = [
        (float(r["value"]), latent[r["patient_id"]])
        for r in cohort["features"]
        if r["feature"] == "n_affirmed_symptoms"
    ]
    assert len(pairs) > 250
    rho = spearmanr([a for a, _ in pairs], [s for _, s in pairs]).statistic
    assert rho > 0.3, rho


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and (p.parts[-2] == "text" or p.name in ("manifest.csv", "note_mentions.csv"))
    }


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    _generate(tmp_path / "a", 40, 7)
    _generate(tmp_path / "b", 40, 7)
    _generate(tmp_path / "c", 40, 8)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a and a == b
    assert a["notes/manifest.csv"] != c["notes/manifest.csv"]
    assert a["_truth/note_mentions.csv"] != c["_truth/note_mentions.csv"]


def test_patients_without_notes_write_nothing(tmp_path: Path) -> None:
    _generate(tmp_path, 10, 3, rate=0.0)
    rates = ModalityRates(notes=0.0)
    truth = TruthLog(tmp_path / "none")
    writer = NotesWriter(GenerationContext(tmp_path / "none", 3, 0.0, truth))
    for patient in iter_cohort(10, 3, rates):
        writer.add(patient)
    assert writer.close() == {"files": 1, "records": 0, "dirty": 0}
    truth.close()
    assert not any((tmp_path / "none" / "notes" / "text").iterdir())
