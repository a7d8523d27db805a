"""Clinical notes: one plain-text file per note plus the manifest an EHR note export ships with.

Layout under ``DIR/notes/``: ``text/<note_id>.txt`` (UTF-8, ``\\n`` line ends) and
``manifest.csv`` (note_id, patient_mrn, note_type, loinc_document_code, author, note_datetime,
file relative to ``DIR/notes``). Notes carry symptom burden (latent ``s``) as affirmed symptom
mentions hidden among distractors (negated, uncertain, historical, hypothetical, family), and ECOG
as free text. PHI (name, MRN, DOB, phone, dates, clinician names) sits in the text on purpose, as in
real notes, so de-identification has real work to do. Every planted concept is logged to
``_truth/note_mentions.csv`` with its assertion flags; empty notes are the dirty records.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from typing import IO

import numpy as np

from mmlake.generate.cohort import FOLLOW_UP_DAYS, PatientRecord, stream_rng
from mmlake.generate.notes_templates import (
    CANCER_TEXT,
    COMORBIDITIES,
    DRUGS,
    DURATIONS,
    HISTORICAL_EVENTS,
    PHRASES,
    ROMAN,
    SIDE_EFFECTS,
    SUBSTAGE,
    SYMPTOMS,
    Concept,
    NoteBuilder,
    banner,
    clinician,
    dx,
    exam,
    family_history,
    fmt_date,
    med,
    neg,
    pick,
    signature,
    social_history,
    split_list,
)
from mmlake.generate.reference import INSTITUTIONS
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
_PROGRESSION = ("progression of disease", "disease progression", "progressive disease")
_STATUS = {  # RECIST category -> (surfaces, target lesion size relative to baseline)
    "progressive disease": (_PROGRESSION, 1.35),
    "stable disease": (("stable disease",), 0.95),
    "partial response": (("partial response",), 0.6),
}
# Supportive drugs whose indication names a lexicon symptom: the mention is hypothetical.
_SUPPORTIVE = {
    "ondansetron": ("8 mg orally every 8 hours as needed for {1}", "nausea"),
    "levetiracetam": ("500 mg orally twice daily for {1} prophylaxis", "seizure"),
}
_DAY = dt.timedelta(days=1)


class Story:
    """One patient's course as every note tells it: dates, regimen, planted symptoms."""

    def __init__(self, p: PatientRecord, rng: np.random.Generator) -> None:
        self.p, self.rng, self.cancer = p, rng, CANCER_TEXT[p.cancer.key]
        self.institution = pick(rng, INSTITUTIONS)
        self.oncologist, self.pcp = clinician(rng), clinician(rng)
        self.site = pick(rng, self.cancer.sites)
        d0 = self.day = p.diagnosis_date
        self.biopsy_date = d0 - int(rng.integers(1, 6)) * _DAY
        self.consult_date = d0 + int(rng.integers(5, 15)) * _DAY
        gap = (self.consult_date - d0).days
        self.imaging_date = d0 + int(rng.integers(1, gap)) * _DAY if p.has("imaging") else None
        self.start = self.consult_date + int(rng.integers(5, 15)) * _DAY
        # A rough size from tumour burden; the imaging module owns the measured lesion.
        self.size_mm = int(np.clip(24 * math.exp(0.3 * p.latent.burden) + rng.normal(0, 3), 8, 95))
        glioma = p.cancer.key == "glioblastoma"
        self.stage = "WHO grade 4" if glioma else f"stage {ROMAN[p.stage]}"
        self.stage += "" if glioma else pick(rng, SUBSTAGE[p.stage])
        # A driver is written only when known: tested by our lab, or on an outside report.
        self.tested = p.has("genomics") or p.targeted_therapy
        self.regimen = self._first_line()
        squamous = p.cancer.key == "nsclc" and p.driver is None and rng.random() < 0.3
        self.microscopy = PHRASES["squamous"][0] if squamous else self.cancer.microscopy
        self.histology = (
            dx("squamous cell carcinoma") if squamous else dx(*self.cancer.histology[::-1])
        )
        if p.cancer.key == "glioblastoma" and self.tested and p.driver is not None:
            # WHO CNS5 (2021): an IDH-mutant grade 4 astrocytic tumour is no longer a glioblastoma.
            self.histology = dx(
                "astrocytoma, IDH-mutant, CNS WHO grade 4", "astrocytoma, idh-mutant"
            )
        n = int(rng.integers(0, 4))
        self.comorbid = [COMORBIDITIES[int(i)] for i in sorted(rng.choice(8, n, replace=False))]
        # The planted signal: affirmed symptom count ~ Poisson(0.8 exp(0.7 s)); the complaints
        # typical of the tumour type are four times as likely to be the ones affirmed.
        k = min(int(rng.poisson(0.8 * math.exp(0.7 * p.latent.symptoms))), len(SYMPTOMS) - 8)
        w = np.array([4.0 if p.cancer.key in s.favoured_by else 1.0 for s in SYMPTOMS])
        chosen = sorted(rng.choice(len(SYMPTOMS), size=k, replace=False, p=w / w.sum()))
        self.affirmed = [SYMPTOMS[int(i)].concept for i in chosen]
        self.pool = [s for s in SYMPTOMS if s.concept not in self.affirmed]  # for distractors
        self.onset: dict[str, int] = {}
        self.weight = float(np.clip(rng.normal(75, 13), 42, 140))  # baseline kg, per visit noise

    def _first_line(self) -> list[str]:
        p = self.p
        if p.targeted_therapy and p.driver is not None and p.driver.therapy is not None:
            return [p.driver.therapy.name]
        names = [t.name for t in p.cancer.standard_therapy]
        if p.cancer.key == "melanoma":  # one checkpoint inhibitor, not both
            return [pick(self.rng, names)]
        return names[:1] if p.cancer.key == "breast" else names  # adjuvant letrozole comes later

    def slots(self, frame: str) -> dict[str, str]:
        """Values for the patient slots ``frame`` uses (random ones drawn only when used)."""
        p, rng, day, she = self.p, self.rng, self.day, self.p.sex == "female"
        slots = {"p": "she" if she else "he", "sexword": "woman" if she else "man"}
        glioma = p.cancer.key == "glioblastoma"
        slots.update(stage=self.stage, phone=p.phone, criteria="RANO" if glioma else "RECIST 1.1")
        if "{P}" in frame:
            slots["P"] = pick(rng, ("She" if she else "He", "The patient"))
        if "{name}" in frame:
            title = "Ms. " if she else "Mr. "
            slots["name"] = pick(rng, (title + p.family_name, f"{p.given_name} {p.family_name}"))
        if "{age}" in frame:
            born = p.birth_date
            slots["age"] = str(
                day.year - born.year - ((day.month, day.day) < (born.month, born.day))
            )
        if "{dur}" in frame:
            slots["dur"] = pick(rng, DURATIONS)
        if "{year}" in frame:
            slots["year"] = str(p.diagnosis_date.year - int(rng.integers(3, 30)))
        return slots

    def say(self, b: NoteBuilder, key: str, *concepts: Concept, **slots: object) -> None:
        """A sentence from the phrase bank (or a literal frame) with the patient's slots.

        ``line=True`` writes it on a line of its own (lists, report lines).
        """
        frame = pick(self.rng, PHRASES[key]) if key in PHRASES else key
        write = b.line if slots.pop("line", False) else b.say
        write(frame, *concepts, **{**self.slots(frame), **{k: str(v) for k, v in slots.items()}})

    def dx(self) -> Concept:
        return dx(pick(self.rng, self.cancer.names), self.cancer.names[0])

    def symptom(self, concept: str) -> Concept:
        surfaces = next(s.surfaces for s in SYMPTOMS if s.concept == concept)
        return Concept(pick(self.rng, surfaces), concept, "symptom")

    def distractors(
        self, n: int, among: frozenset[str] | None = None, **flags: bool
    ) -> list[Concept]:
        """Symptoms the patient does not have, mentioned with a non-affirming assertion."""
        pool = [s for s in self.pool if among is None or s.concept in among]
        picked = [
            pool[int(i)] for i in self.rng.choice(len(pool), min(n, len(pool)), replace=False)
        ]
        # Hypothetical and uncertain frames read best with the base form of the term.
        surfaces = [
            pick(self.rng, s.surfaces) if "negated" in flags else s.surfaces[0] for s in picked
        ]
        return [
            Concept(t, s.concept, "symptom", **flags) for t, s in zip(surfaces, picked, strict=True)
        ]

    def negations(self, b: NoteBuilder, n: int) -> None:
        while n > 0:
            two = n > 1 and self.rng.random() < 0.5
            key = "negated_two" if two else "negated_one"
            self.say(b, key, *self.distractors(2 if two else 1, negated=True))
            n -= 2 if two else 1

    def hedges(self, b: NoteBuilder) -> None:
        """Uncertain and hypothetical symptom mentions that an extractor must not count."""
        if self.rng.random() < 0.5:
            self.say(b, "uncertain", *self.distractors(1, uncertain=True))
        frame = pick(self.rng, PHRASES["hypothetical"])
        self.say(b, frame, *self.distractors(1 + ("{1}" in frame), hypothetical=True))

    def regimen_text(self, drugs: list[str], **flags: bool) -> tuple[str, list[Concept]]:
        """``{0} <dose>, {1} <dose> and ...`` with one medication concept per drug."""
        text = _listing(len(drugs), "and", [DRUGS[d][1] for d in drugs])
        return text, [med(d, **flags) for d in drugs]


def _listing(n: int, conjunction: str = "and", after: list[str] | None = None) -> str:
    """``{0}, {1} and {2}``: slots for ``n`` concepts, each optionally followed by a text."""
    parts = [f"{{{i}}}" + (f" {after[i]}" if after else "") for i in range(n)]
    return parts[0] if n == 1 else ", ".join(parts[:-1]) + f" {conjunction} " + parts[-1]


def _at(rng: np.random.Generator, day: dt.date, first: int = 8, last: int = 17) -> dt.datetime:
    minute = int(rng.integers(first * 60, last * 60))
    return dt.datetime.combine(day, dt.time(minute // 60, minute % 60))


def _plan(st: Story) -> list[tuple[str, dt.datetime, str]]:
    """The note schedule over the first year, in time order: (note_type, datetime, status).

    Pathology signs out on the diagnosis date, staging imaging follows, the consult comes within
    two weeks, and progress notes sit at follow-ups once treatment has started, one of them just
    after the progression date when the patient progresses.
    """
    p, rng = st.p, st.rng
    plan = [
        ("pathology_report", _at(rng, p.diagnosis_date, 13, 19), ""),
        ("oncology_consult", _at(rng, st.consult_date), ""),
    ]
    if st.imaging_date is not None:
        plan.append(("radiology_report", _at(rng, st.imaging_date, 9, 20), ""))
    n_progress = int(rng.integers(1 if p.label else 0, 6 - len(plan) + 1))
    first = st.start + 14 * _DAY
    end = p.diagnosis_date + FOLLOW_UP_DAYS * _DAY
    if p.label and p.progression_date is not None:
        at = min(p.progression_date + int(rng.integers(0, 11)) * _DAY, end)
        plan.append(("progress_note", _at(rng, max(at, first)), "progressive disease"))
        n_progress -= 1
        end = p.progression_date - 7 * _DAY
    span = (end - first).days
    if n_progress > 0 and span >= 14 * n_progress:
        for offset in sorted(rng.choice(span, size=n_progress, replace=False)):
            status = "partial response" if rng.random() < 0.4 else "stable disease"
            plan.append(("progress_note", _at(rng, first + int(offset) * _DAY), status))
    plan.sort(key=lambda item: item[1])
    # Which clinical note first affirms each symptom: mostly the consult, else a follow-up.
    n_progress = sum(kind == "progress_note" for kind, _, _ in plan)
    for concept in st.affirmed:
        late = n_progress > 0 and rng.random() < 0.3
        st.onset[concept] = int(rng.integers(1, n_progress + 1)) if late else 0
    return plan


def _consult(st: Story, b: NoteBuilder) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    b.start("CHIEF COMPLAINT")
    st.say(b, "consult_cc", st.dx())
    b.start("HISTORY OF PRESENT ILLNESS")
    comorbid = [dx(c[1], c[0]) for c in st.comorbid]
    history = f"with a history of {_listing(len(comorbid))} " if comorbid else ""
    frame = "{name} is a {age}-year-old {sexword} " + history + "who presents for evaluation "
    st.say(b, frame + f"of newly diagnosed {{stage}} {{{len(comorbid)}}}.", *comorbid, st.dx())
    own = [c for c in st.affirmed if st.onset[c] == 0]
    for concept in own:
        st.say(b, "affirmed_new", st.symptom(concept))
    if not own:
        st.say(b, "asymptomatic")
    biopsy = Concept(ct.biopsy[1], ct.biopsy[0], "procedure")
    st.say(b, "biopsy", biopsy, st.histology, site=st.site, date=fmt_date(rng, st.biopsy_date))
    if st.imaging_date is not None:
        st.say(b, "staging", scan=ct.scan, date=fmt_date(rng, st.imaging_date), mm=st.size_mm)
    if st.tested and p.driver is not None:
        st.say(b, "driver_found", dx(p.driver.label, p.driver.label))
    elif st.tested:
        st.say(b, "driver_none", neg("actionable alterations", "actionable driver mutation"))
    else:
        st.say(b, "driver_pending")
    b.start("PAST MEDICAL HISTORY")
    for concept in comorbid:
        b.line("- {0}", concept)
    for concept, category, surface, frame in HISTORICAL_EVENTS:
        if rng.random() < 0.15:
            st.say(b, "- " + frame, Concept(surface, concept, category, historical=True), line=True)
    if rng.random() < 0.25:
        frame = "- " + pick(rng, PHRASES["historical_symptom"])
        st.say(b, frame, *st.distractors(1, historical=True), line=True)
    if b.lines[-1] == "PAST MEDICAL HISTORY:":
        b.say("No significant past medical history.")
    b.start("FAMILY HISTORY")
    family_history(b, rng)
    b.start("SOCIAL HISTORY")
    social_history(b, rng, p)
    b.start("MEDICATIONS")
    _medications(st, b, None)
    b.start("ALLERGIES")
    st.say(b, "allergies", neg("drug allergies", "drug allergy"))
    b.start("REVIEW OF SYSTEMS")
    for concept in own:
        if rng.random() < 0.6:
            st.say(b, "ros_positive", st.symptom(concept))
    if own and rng.random() < 0.4:
        st.say(b, "mixed", *st.distractors(1, negated=True), st.symptom(own[-1]))
    st.negations(b, int(rng.integers(2, 6)))
    st.say(b, "ros_close")
    b.start("PHYSICAL EXAM")
    exam(b, rng, p.ecog, st.weight)
    b.start("ASSESSMENT AND PLAN")
    st.say(b, "consult_ap", st.dx())
    regimen, drugs = st.regimen_text(st.regimen, hypothetical=True)
    if p.targeted_therapy and p.driver is not None:
        st.say(b, "targeted_rationale", dx(p.driver.label, p.driver.label), drugs[0])
    if p.cancer.key == "glioblastoma":
        regimen = pick(rng, PHRASES["gbm_plan"])
        drugs.append(
            Concept("radiation therapy", "radiation therapy", "procedure", hypothetical=True)
        )
    plan = pick(rng, PHRASES["plan_start"]).replace("{regimen}", regimen)
    st.say(b, plan, *drugs, date=fmt_date(rng, st.start))
    side_effects = st.distractors(2, SIDE_EFFECTS, hypothetical=True)
    if len(side_effects) == 2:
        st.say(b, "side_effects", *side_effects)
    st.hedges(b)
    st.say(b, "follow_up", n=int(rng.integers(2, 5)))
    if rng.random() < 0.5:
        st.say(b, "contact")


def _progress(st: Story, b: NoteBuilder, day: dt.date, status: str, index: int) -> None:
    rng, ct = st.rng, st.cancer
    b.start("CHIEF COMPLAINT")
    st.say(b, "progress_cc", st.dx())
    b.start("HISTORY OF PRESENT ILLNESS")
    st.say(b, "progress_open", st.dx())
    drugs = st.regimen
    if index == 1 and st.p.cancer.key == "glioblastoma":  # chemoradiation, then adjuvant dosing
        radiation = Concept("radiation therapy", "radiation therapy", "procedure")
        dose = DRUGS["temozolomide"][1]
        st.say(
            b,
            "gbm_started",
            med("temozolomide"),
            radiation,
            date=fmt_date(rng, st.start),
            dose=dose,
        )
    elif index == 1:  # the first follow-up records the start date
        for drug in st.regimen:
            st.say(b, "started", med(drug), dose=DRUGS[drug][1], date=fmt_date(rng, st.start))
    elif index > 1:
        for drug in drugs:
            st.say(b, "continuing", med(drug), dose=DRUGS[drug][1])
    mentioned = 0
    for concept in st.affirmed:
        if st.onset[concept] == index or (st.onset[concept] < index and rng.random() < 0.35):
            key = "affirmed_new" if st.onset[concept] == index else "affirmed_followup"
            st.say(b, key, st.symptom(concept))
            mentioned += 1
    if not mentioned:
        st.say(b, "feels_well")
    b.start("MEDICATIONS")
    _medications(st, b, day)
    b.start("REVIEW OF SYSTEMS")
    st.negations(b, int(rng.integers(1, 4)))
    b.start("PHYSICAL EXAM")
    exam(b, rng, st.p.ecog if rng.random() < 0.7 else None, st.weight)
    b.start("ASSESSMENT AND PLAN")
    surfaces, scale = _STATUS[status]
    scan_day, mm = fmt_date(rng, day - int(rng.integers(1, 6)) * _DAY), round(st.size_mm * scale)
    st.say(b, status, dx(pick(rng, surfaces), status), scan=ct.scan, date=scan_day, mm=mm)
    if status == "progressive disease":
        for drug in drugs:
            st.say(b, "stopped", med(drug), date=fmt_date(rng, day))
        standard = [t.name for t in st.p.cancer.standard_therapy]
        if st.p.targeted_therapy:
            text, concepts = st.regimen_text(standard[:2], hypothetical=True)
            st.say(b, pick(rng, PHRASES["next_line"]).replace("{regimen}", text), *concepts)
        else:
            st.say(b, "no_next_line")
    else:
        if rng.random() > 0.35 or not _toxicity(st, b, day, drugs):
            st.say(b, "continue")
    st.hedges(b)


def _toxicity(st: Story, b: NoteBuilder, day: dt.date, drugs: list[str]) -> bool:
    """A dose reduction or a hold, for a toxicity that is a diagnosis (never a lexicon symptom)."""
    rng = st.rng
    drug = pick(rng, drugs)
    kind, _, reduced, toxicities = DRUGS[drug]
    if kind == "endocrine":
        return False
    key = "dose_reduced" if reduced != "-" and rng.random() < 0.6 else "held"
    st.say(b, key, med(drug), dx(pick(rng, toxicities)), dose=reduced, date=fmt_date(rng, day))
    return True


def _medications(st: Story, b: NoteBuilder, day: dt.date | None) -> None:
    """Home medications, then (on treatment) the oncology and supportive drugs."""
    for _, _, drug, dose in st.comorbid:
        b.line("- {0} " + dose, med(drug))
    if day is None:
        if not st.comorbid:
            b.say("None.")
        return
    for drug in st.regimen:
        b.line("- {0} " + DRUGS[drug][1], med(drug))
    glioma = st.p.cancer.key == "glioblastoma"
    if glioma or DRUGS[st.regimen[0]][0] == "chemo":
        drug = "levetiracetam" if glioma else "ondansetron"
        dose, indication = _SUPPORTIVE[drug]
        reason = Concept(indication, indication, "symptom", hypothetical=True)
        b.line("- {0} " + dose, med(drug), reason)


def _pathology(st: Story, b: NoteBuilder) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    b.start("CLINICAL HISTORY")
    biopsy = Concept(ct.biopsy[1], ct.biopsy[0], "procedure")
    st.say(b, "path_history", biopsy, site=st.site, date=fmt_date(rng, st.biopsy_date))
    b.start("SPECIMEN")
    b.line(f"{st.site.capitalize()}, {ct.biopsy[1]}")
    b.start("GROSS DESCRIPTION")
    pieces = ct.pieces.format(n=int(rng.integers(2, 6)))
    st.say(b, "path_gross", mrn=p.mrn, pieces=pieces, size=f"{rng.uniform(0.4, 2.5):.1f}")
    b.start("MICROSCOPIC DESCRIPTION")
    st.say(b, st.microscopy)
    b.start("DIAGNOSIS")
    b.line(f"{st.site.upper()}, {ct.biopsy[1].upper()}:")
    b.line("- {0}", st.histology)
    grade, depth = int(rng.integers(1, 4)), f"{rng.uniform(0.4, 6.0):.1f}"
    b.line("- " + ct.markers.format(pct=int(rng.integers(1, 96)), grade=grade, depth=depth))
    if p.cancer.key != "glioblastoma":
        invasion = rng.random() < 0.3 + 0.1 * p.stage
        lvi = dx("Lymphovascular invasion", negated=not invasion)
        b.line("- {0}: " + ("present" if invasion else "not identified"), lvi)
    b.start("MOLECULAR STUDIES")
    if not st.tested:
        st.say(b, "molecular_none")
        return
    if p.driver is not None:
        vaf = int(rng.integers(8, 61))
        found = dx(p.driver.label, p.driver.label)
        st.say(b, "molecular_found", found, hgvs=p.driver.hgvs_c, vaf=vaf, line=True)
    genes = [neg(g, f"{g} mutation") for g in ct.genes if p.driver is None or g != p.driver.gene]
    b.line(f"No pathogenic variants detected in {_listing(len(genes), 'or')}.", *genes)


def _radiology(st: Story, b: NoteBuilder) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    glioma = p.cancer.key == "glioblastoma"
    b.start("CLINICAL HISTORY")
    st.say(b, "rad_history", st.dx())
    b.start("TECHNIQUE")
    st.say(b, "technique_mr" if glioma else "technique_ct", n=int(rng.integers(7, 13)) * 10)
    b.start("COMPARISON")
    st.say(b, "comparison")
    b.start("FINDINGS")
    short = int(st.size_mm * rng.uniform(0.6, 0.95))
    lesion = dx(ct.lesion.format(site=st.site), "primary tumor")
    st.say(b, "rad_lesion", lesion, a=st.size_mm, s=short)
    if glioma:
        st.say(b, "rad_edema", dx("vasogenic edema"))
    elif p.stage >= 3:
        st.say(b, "rad_nodes", dx("nodal metastasis"), n=int(rng.integers(11, 30)))
    else:
        st.say(b, "rad_no_nodes", neg("lymphadenopathy", "lymphadenopathy"))
    distant = p.stage == 4 and not glioma
    metastatic = dx("metastatic disease")
    if distant:
        st.say(b, "rad_distant", metastatic, mets=ct.metastases, n=int(rng.integers(6, 40)))
    elif not glioma and rng.random() < 0.3:
        uncertain = dx("metastasis", "metastatic disease", uncertain=True)
        st.say(b, "rad_indeterminate", uncertain, n=int(rng.integers(3, 7)))
    for i in rng.choice(len(ct.negatives), size=2, replace=False):
        st.say(b, "No {0}.", neg(ct.negatives[int(i)], ct.negatives[int(i)]))
    b.start("IMPRESSION")
    st.say(b, "rad_impression", lesion, st.dx(), a=st.size_mm, line=True)
    if distant:
        b.line("2. Findings compatible with {0}, as described above.", metastatic)
    else:
        b.line("2. No evidence of distant {0}.", metastatic._replace(negated=True))


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
        st = Story(patient, stream_rng(ctx.seed, patient.index, "notes:text"))
        dirty_rng = stream_rng(ctx.seed, patient.index, "notes:dirty")
        plan = _plan(st)
        affirmed: set[str] = set()
        ecog_seen, negated, progress = False, 0, 0
        for seq, (note_type, when, status) in enumerate(plan, start=1):
            note_id = f"NOTE-{patient.index:07d}-{seq:02d}"
            st.day = when.date()
            author = st.oncologist if note_type in ("oncology_consult", "progress_note") else None
            author = author or clinician(st.rng)  # else the pathologist or radiologist
            b = _open(st, note_type, when, author)
            if note_type == "oncology_consult":
                _consult(st, b)
            elif note_type == "progress_note":
                progress += 1
                _progress(st, b, when.date(), status, progress)
            elif note_type == "pathology_report":
                _pathology(st, b)
            else:
                _radiology(st, b)
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


def _open(st: Story, note_type: str, when: dt.datetime, author: tuple[str, str]) -> NoteBuilder:
    """A builder holding the note's title and PHI banner, laid out as each note type does."""
    b, rng = NoteBuilder(), st.rng
    for text in (st.institution, NOTE_TYPES[note_type][1], ""):
        b.line(text)
    day = fmt_date(rng, when.date())
    if note_type == "pathology_report":
        lines = [
            ("Accession #", f"S{when:%y}-{int(rng.integers(1, 99999)):05d}"),
            ("Collected", fmt_date(rng, st.biopsy_date)),
            ("Reported", day),
            ("Submitting physician", "Dr. " + " ".join(clinician(rng))),
        ]
    elif note_type == "radiology_report":
        lines = [
            ("Exam", st.cancer.exam),
            ("Accession #", f"R{int(rng.integers(1e6, 1e7))}"),
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
