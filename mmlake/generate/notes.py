"""Clinical notes: one plain-text file per note plus the manifest an EHR note export ships with.

Layout under ``DIR/notes/``: ``text/<note_id>.txt`` (UTF-8, ``\\n`` line ends) and
``manifest.csv`` (note_id, patient_mrn, note_type, loinc_document_code, author, note_datetime,
file relative to ``DIR/notes``). Notes carry symptom burden (latent ``s``) as affirmed symptom
mentions hidden among distractors (negated, uncertain, historical, hypothetical, family), and ECOG
as free text. PHI (name, MRN, DOB, phone, dates, clinician names) sits in the text on purpose, as in
real notes, so de-identification has real work to do. Every planted concept is logged to
``_truth/note_mentions.csv`` with its assertion flags; empty notes are the dirty records.

This module frames each note (schedule, title and PHI banner, signature), writes the files, the
manifest and the ground truth; the bodies come from :mod:`~mmlake.generate.notes_clinical`
(consult, progress notes) and :mod:`~mmlake.generate.notes_reports` (pathology, radiology).
There is one radiology report per imaging study of ``imaging_dicom.plan_studies`` (staging, and
restaging when planned), finalized on the study's day and headed with its accession number, so a
report traces to its DICOM study and its EHR Procedure.
"""

from __future__ import annotations

import csv
import datetime as dt
from typing import IO, NamedTuple

import numpy as np

from mmlake.generate.cohort import FOLLOW_UP_DAYS, PatientRecord, stream_rng
from mmlake.generate.imaging_dicom import StudyPlan, plan_studies
from mmlake.generate.notes_clinical import write_consult, write_progress
from mmlake.generate.notes_lexicon import split_list
from mmlake.generate.notes_reports import write_pathology, write_radiology
from mmlake.generate.notes_story import DAY, Story
from mmlake.generate.notes_templates import (
    NoteBuilder,
    banner,
    clinician,
    fmt_date,
    pick,
    signature,
)
from mmlake.generate.truth import GenerationContext

# note_type -> (LOINC document ontology code, title, signature verb)
NOTE_TYPES = {
    "oncology_consult": ("11488-4", "ONCOLOGY CONSULTATION", "Electronically signed"),
    "progress_note": ("11506-3", "HEMATOLOGY/ONCOLOGY PROGRESS NOTE", "Electronically signed"),
    "radiology_report": ("18748-4", "RADIOLOGY REPORT", "Finalized"),
    "pathology_report": ("11526-1", "SURGICAL PATHOLOGY REPORT", "Electronically signed out"),
}
MANIFEST_COLUMNS = split_list(
    "note_id, patient_mrn, note_type, loinc_document_code, author, note_datetime, file"
)
_EMPTY_BODIES = ("", "\n", "   \n", "\n\n\t\n")  # dirty notes: a failed export, an unsigned draft


def _at(rng: np.random.Generator, day: dt.date, first: int = 8, last: int = 17) -> dt.datetime:
    minute = int(rng.integers(first * 60, last * 60))
    return dt.datetime.combine(day, dt.time(minute // 60, minute % 60))


class _Note(NamedTuple):
    kind: str  # a NOTE_TYPES key
    when: dt.datetime
    status: str = ""  # progress notes: the restaging verdict
    study: StudyPlan | None = None  # radiology reports: the study reported


def _plan(st: Story) -> list[_Note]:
    """The note schedule over the first year, in time order.

    Pathology signs out on the diagnosis date, each imaging study is reported on its day, the
    consult comes within two weeks (after the staging study), and progress notes sit at
    follow-ups once treatment has started, one of them just after the progression date when the
    patient progresses. There are 2-6 notes: a restaging report takes a progress note's place.
    """
    p, rng = st.p, st.rng
    plan = [
        _Note("pathology_report", _at(rng, p.diagnosis_date, 13, 19)),
        _Note("oncology_consult", _at(rng, st.consult_date)),
    ]
    for study in st.studies:  # finalized 30 min to 4 h after the study started (by 22:00)
        signed = study.when.replace(second=0) + int(rng.integers(30, 241)) * dt.timedelta(minutes=1)
        plan.append(_Note("radiology_report", signed, study=study))
    n_progress = int(rng.integers(1 if p.label else 0, 6 - len(plan) + 1))
    first = st.start + 14 * DAY
    end = p.diagnosis_date + FOLLOW_UP_DAYS * DAY
    if p.label and p.progression_date is not None:
        at = min(p.progression_date + int(rng.integers(0, 11)) * DAY, end)
        plan.append(_Note("progress_note", _at(rng, max(at, first)), "progressive disease"))
        n_progress -= 1
        end = p.progression_date - 7 * DAY
    span = (end - first).days
    if n_progress > 0 and span >= 14 * n_progress:
        for offset in sorted(rng.choice(span, size=n_progress, replace=False)):
            status = "partial response" if rng.random() < 0.4 else "stable disease"
            plan.append(_Note("progress_note", _at(rng, first + int(offset) * DAY), status))
    plan.sort(key=lambda note: note.when)
    # Which clinical note first affirms each symptom: mostly the consult, else a follow-up.
    n_progress = sum(note.kind == "progress_note" for note in plan)
    for concept in st.affirmed:
        late = n_progress > 0 and rng.random() < 0.3
        st.onset[concept] = int(rng.integers(1, n_progress + 1)) if late else 0
    return plan


class NotesWriter:
    """Writes each patient's notes as the cohort streams past, and the manifest row by row."""

    modality = "notes"

    def __init__(self, ctx: GenerationContext) -> None:
        self.ctx = ctx
        self.text_dir = ctx.out_dir / "notes" / "text"
        self.text_dir.mkdir(parents=True, exist_ok=True)
        manifest = ctx.out_dir / "notes" / "manifest.csv"
        self._handle: IO[str] = manifest.open("w", newline="", encoding="utf-8")
        self._manifest = csv.writer(self._handle, lineterminator="\n")
        self._manifest.writerow(MANIFEST_COLUMNS)
        self.counts = {"files": 1, "records": 0, "dirty": 0}

    def add(self, patient: PatientRecord) -> None:
        if not patient.has(self.modality):
            return
        ctx, pid = self.ctx, patient.patient_id
        # The imaging writer's own plan: report dates, accessions and sizes match the DICOM.
        studies = plan_studies(ctx.seed, patient, ctx.image_size)
        st = Story(patient, stream_rng(ctx.seed, patient.index, "notes:text"), studies)
        st.brain_rng = stream_rng(ctx.seed, patient.index, "notes:brain_metastases")
        dirty_rng = stream_rng(ctx.seed, patient.index, "notes:dirty")
        plan = _plan(st)
        affirmed: set[str] = set()
        ecog_seen, negated, progress = False, 0, 0
        for seq, (note_type, when, status, study) in enumerate(plan, start=1):
            note_id = f"NOTE-{patient.index:07d}-{seq:02d}"
            st.day = when.date()
            author = st.oncologist if note_type in ("oncology_consult", "progress_note") else None
            author = author or clinician(st.rng)  # else the pathologist or radiologist
            b = _open(st, note_type, when, author, study)
            if note_type == "oncology_consult":
                write_consult(st, b)
            elif note_type == "progress_note":
                progress += 1
                write_progress(st, b, when.date(), status, progress)
            elif note_type == "pathology_report":
                write_pathology(st, b)
            elif study is not None:  # a radiology report: the study it reports
                write_radiology(st, b, study)
            signature(b, st.rng, NOTE_TYPES[note_type][2], when, author)
            path = self.text_dir / f"{note_id}.txt"
            dirty = ctx.corrupt(dirty_rng)
            empty = _EMPTY_BODIES[int(dirty_rng.integers(len(_EMPTY_BODIES)))]
            path.write_bytes((empty if dirty else b.text()).encode("utf-8"))
            if dirty:
                reason = "note body is empty or whitespace-only"
                ctx.truth.dirty(self.modality, "empty_note", ctx.relative(path), note_id, reason)
                self.counts["dirty"] += 1
            for c, section in [] if dirty else b.mentions:
                row = c._asdict()
                row["text"] = row.pop("surface")
                ctx.truth.mention(note_id=note_id, patient_id=pid, section=section, **row)
                if c.category == "symptom" and not any(c[3:]):
                    affirmed.add(c.concept)
                ecog_seen = ecog_seen or c.category == "ecog"
                negated += c.negated
            row = [note_id, patient.mrn, note_type, NOTE_TYPES[note_type][0]]
            row += [f"{author[1]}, {author[0]} MD", when.isoformat(), f"text/{note_id}.txt"]
            self._manifest.writerow(row)
            self.counts["files"] += 1
            self.counts["records"] += 1
        # Features are what the surviving (non-empty) notes carry, so a reader can recompute them.
        ctx.truth.feature(pid, self.modality, "n_affirmed_symptoms", len(affirmed))
        if ecog_seen:
            ctx.truth.feature(pid, self.modality, "ecog_mentioned", patient.ecog)
        ctx.truth.feature(pid, self.modality, "n_negated_mentions", negated)
        ctx.truth.feature(pid, self.modality, "n_notes", len(plan))

    def close(self) -> dict[str, int]:
        self._handle.close()
        return dict(self.counts)


def _open(
    st: Story,
    note_type: str,
    when: dt.datetime,
    author: tuple[str, str],
    study: StudyPlan | None = None,
) -> NoteBuilder:
    """A builder holding the note's title and PHI banner, laid out as each note type does."""
    b, rng = NoteBuilder(), st.rng
    for text in (st.institution, NOTE_TYPES[note_type][1], ""):
        b.line(text)
    day = fmt_date(rng, (study.when if study else when).date())  # radiology: the exam's date
    if note_type == "pathology_report":
        lines = [
            ("Accession #", f"S{when:%y}-{int(rng.integers(1, 99999)):05d}"),
            ("Collected", fmt_date(rng, st.biopsy_date)),
            ("Reported", day),
            ("Submitting physician", "Dr. " + " ".join(clinician(rng))),
        ]
    elif study is not None:  # radiology: the RIS accession number and date of the DICOM study
        lines = [
            ("Exam", st.cancer.exam),
            ("Accession #", study.accession),
            ("Exam date", day),
            ("Ordering physician", "Dr. " + " ".join(st.oncologist)),
        ]
    else:
        lines = [
            (pick(rng, ("Phone", "Home phone", "Contact")), st.p.phone),
            ("Date of service", day),
            ("Attending", "Dr. " + " ".join(author)),
        ]
        if note_type == "oncology_consult":
            lines.append(("Referring physician", "Dr. " + " ".join(st.pcp)))
    banner(b, rng, st.p, lines)
    return b
