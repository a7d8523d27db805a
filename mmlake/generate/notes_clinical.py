"""The oncologist's notes: the consultation and the follow-up progress notes.

The consult tells the whole presentation (history, biopsy, staging, driver, plan); progress notes
record treatment starts, symptoms as they first appear or persist, and the restaging verdict
(response, stable or progressive disease) with any dose change. Both hide the affirmed symptoms
among negated, uncertain, historical and hypothetical distractors.
"""

from __future__ import annotations

import datetime as dt

from mmlake.generate.notes_lexicon import DRUGS, HISTORICAL_EVENTS, PHRASES, SIDE_EFFECTS
from mmlake.generate.notes_story import DAY, Story
from mmlake.generate.notes_templates import (
    Concept,
    NoteBuilder,
    dx,
    exam,
    family_history,
    fmt_date,
    listing,
    med,
    neg,
    pick,
    social_history,
)

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


# The staging brain MRI as the consult words it (brain metastases: the notes-only fact of the
# trial criteria). Negative and "rule out" wordings are what a screening query must not misread.
_BRAIN_AFFIRMED = (
    "Staging MRI brain shows {n} enhancing {0}, the largest {mm} mm.",
    "MRI brain demonstrates {n} ring-enhancing {0} with surrounding edema, up to {mm} mm.",
)
_BRAIN_SOLITARY = "MRI brain shows a solitary enhancing {0}, {mm} mm."
_BRAIN_NEGATED = (
    "MRI brain: no evidence of {0}.",
    "Brain MRI is negative for {0}.",
    "No evidence of {0} on MRI brain.",
)
_BRAIN_UNCERTAIN = "MRI brain ordered to rule out {0}."
# Chance that a patient WITHOUT brain metastases has a negative MRI, or only an ordered one,
# documented in the consult, by stage (screening MRIs are for advanced disease).
_BRAIN_NEGATIVE_RATE = {4: 0.6, 3: 0.35}
_BRAIN_RULE_OUT_RATE = {4: 0.2, 3: 0.1}


def brain_mri(st: Story, b: NoteBuilder) -> None:
    """The consult's brain-MRI sentence: affirmed, negative, "rule out" or none.

    Drawn on ``st.brain_rng`` only, so every other sentence of the note keeps its draws.
    """
    p, rng = st.p, st.brain_rng
    if rng is None or p.cancer.key == "glioblastoma":  # a primary brain tumour: not metastases
        return
    if p.brain_metastases:
        n = int(rng.integers(1, 5))
        mm = str(int(rng.integers(4, 19)))
        if n == 1:
            surface = "brain metastasis"
            b.say(_BRAIN_SOLITARY, Concept(surface, "brain metastases", "diagnosis"), mm=mm)
            return
        frame = pick(rng, _BRAIN_AFFIRMED)
        count = ("two", "three", "multiple")[n - 2]
        b.say(frame, Concept("brain metastases", "brain metastases", "diagnosis"), n=count, mm=mm)
        return
    u = rng.random()
    negative = _BRAIN_NEGATIVE_RATE.get(p.stage, 0.1)
    if u < negative:
        surface = pick(rng, ("brain metastases", "brain metastasis", "brain mets"))
        concept = Concept(surface, "brain metastases", "diagnosis", negated=True)
        b.say(pick(rng, _BRAIN_NEGATED), concept)
    elif u < negative + _BRAIN_RULE_OUT_RATE.get(p.stage, 0.05):
        concept = Concept("brain metastases", "brain metastases", "diagnosis", uncertain=True)
        b.say(_BRAIN_UNCERTAIN, concept)


def write_consult(st: Story, b: NoteBuilder) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    b.start("CHIEF COMPLAINT")
    st.say(b, "consult_cc", st.dx())
    b.start("HISTORY OF PRESENT ILLNESS")
    comorbid = [dx(c[1], c[0]) for c in st.comorbid]
    history = f"with a history of {listing(len(comorbid))} " if comorbid else ""
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
    brain_mri(st, b)
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
    regimen, drugs = st.regimen_text(st.standard, hypothetical=True)
    if p.cancer.key == "glioblastoma":
        regimen = pick(rng, PHRASES["gbm_plan"])
        drugs.append(
            Concept("radiation therapy", "radiation therapy", "procedure", hypothetical=True)
        )
    plan = pick(rng, PHRASES["plan_start"]).replace("{regimen}", regimen)
    st.say(b, plan, *drugs, date=fmt_date(rng, st.start))
    if st.targeted and p.driver is not None:
        text, concepts = st.regimen_text(st.targeted, hypothetical=True)
        frame = pick(rng, PHRASES["targeted_rationale"]).replace("{drugs}", text)
        frame = frame.replace("{driver}", f"{{{len(concepts)}}}")  # the driver follows the drugs
        st.say(b, frame, *concepts, dx(p.driver.label, p.driver.label))
    side_effects = st.distractors(2, SIDE_EFFECTS, hypothetical=True)
    if len(side_effects) == 2:
        st.say(b, "side_effects", *side_effects)
    st.hedges(b)
    st.say(b, "follow_up", n=int(rng.integers(2, 5)))
    if rng.random() < 0.5:
        st.say(b, "contact")


def write_progress(st: Story, b: NoteBuilder, day: dt.date, status: str, index: int) -> None:
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
            date = fmt_date(rng, st.started[drug])
            st.say(b, "started", med(drug), dose=DRUGS[drug][1], date=date)
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
    scan_day, mm = fmt_date(rng, day - int(rng.integers(1, 6)) * DAY), round(st.size_mm * scale)
    st.say(b, status, dx(pick(rng, surfaces), status), scan=ct.scan, date=scan_day, mm=mm)
    if status == "progressive disease":
        for drug in drugs:
            st.say(b, "stopped", med(drug), date=fmt_date(rng, day))
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
