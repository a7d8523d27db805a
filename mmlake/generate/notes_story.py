"""One patient's course as every note tells it, and the sentences it tells it with.

:class:`Story` draws, once per patient, what all of that patient's notes must agree on: the
biopsy, consult and treatment dates, the regimen, the histology and the planted symptom signal
(affirmed symptom count ~ Poisson(0.8 exp(0.7 s))). Imaging is not drawn here: the studies are the
imaging writer's own plan (``imaging_dicom.plan_studies``), so every report carries the DICOM
study's date, accession number and measured lesion. Its helpers fill phrase-bank frames with the
patient's slots and draw the non-affirmed distractor mentions. Every draw is on the patient's own
``notes:text`` stream, in note order.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from mmlake.generate.cohort import PatientRecord
from mmlake.generate.imaging_dicom import StudyPlan
from mmlake.generate.notes_lexicon import (
    CANCER_TEXT,
    COMORBIDITIES,
    DRUGS,
    DURATIONS,
    PHRASES,
    ROMAN,
    SUBSTAGE,
    SYMPTOM_BY_CONCEPT,
    SYMPTOMS,
)
from mmlake.generate.notes_templates import Concept, NoteBuilder, clinician, dx, listing, med, pick

DAY = dt.timedelta(days=1)


def mm(length: float) -> int:
    """A length as a radiologist reports it: whole millimetres (halves round up)."""
    return math.floor(length + 0.5)


class Story:
    """One patient's course as every note tells it: dates, regimen, planted symptoms."""

    def __init__(
        self, p: PatientRecord, rng: np.random.Generator, studies: list[StudyPlan]
    ) -> None:
        self.p, self.rng, self.cancer = p, rng, CANCER_TEXT[p.cancer.key]
        self.studies = studies  # staging, then restaging when planned (empty without imaging)
        self.institution = p.institution
        self.oncologist, self.pcp = clinician(rng), clinician(rng)
        sites = self.cancer.sites
        if studies and p.cancer.key in ("nsclc", "glioblastoma"):
            # The imaged lesion is the primary: its side as the staging images show it (LPS,
            # the patient's right at negative x).
            side = "right" if studies[0].lesion.center[0] < 0 else "left"
            sites = tuple(s for s in sites if s.startswith(side))
        self.site = pick(rng, sites)
        d0 = self.day = p.diagnosis_date
        self.biopsy_date = d0 - int(rng.integers(1, 6)) * DAY
        self.imaging_date = studies[0].when.date() if studies else None
        self.consult_date = d0 + int(rng.integers(5, 15)) * DAY
        if self.imaging_date is not None:  # the consult discusses the staging study's result
            self.consult_date = max(self.consult_date, self.imaging_date + DAY)
        self.start = self.consult_date + int(rng.integers(5, 15)) * DAY
        # The target lesion as radiology measures it: the staging lesion's longest diameter,
        # rounded to mm; without imaging (scans outside this export) a rough size drawn from
        # the same documented model, 22 mm x exp(0.35 b) with 10% scatter.
        size = 22 * math.exp(0.35 * p.latent.burden + rng.normal(0, 0.1))
        self.size_mm = int(np.clip(round(size), 5, 120))
        if studies:
            self.size_mm = mm(studies[0].lesion.diameter_mm)
        glioma = p.cancer.key == "glioblastoma"
        self.stage = "WHO grade 4" if glioma else f"stage {ROMAN[p.stage]}"
        self.stage += "" if glioma else pick(rng, SUBSTAGE[p.stage])
        # A driver is written only when known: tested by our lab, or on an outside report.
        self.tested = p.has("genomics") or p.targeted_therapy
        self.standard, self.targeted = self._first_line()
        self.regimen = self.standard + self.targeted
        later = self.start + int(rng.integers(3, 14)) * DAY  # before the first follow-up
        self.started = {d: later if d in self.targeted else self.start for d in self.regimen}
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
        # The brain-MRI finding's own stream (set by the writer), so planting it moved no draw.
        self.brain_rng: np.random.Generator | None = None

    def _first_line(self) -> tuple[list[str], list[str]]:
        """(standard drugs, matched targeted drugs), as the EHR prescribes them."""
        p = self.p
        standard = [t.name for t in p.regimen]
        targeted = []
        if p.targeted_therapy and p.driver is not None and p.driver.therapy is not None:
            # Added once the sequencing report is back; BRAF V600E pairs with a MEK inhibitor.
            targeted = [p.driver.therapy.name] + (["trametinib"] * (p.driver.gene == "BRAF"))
        return standard, targeted

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
        return Concept(pick(self.rng, SYMPTOM_BY_CONCEPT[concept].surfaces), concept, "symptom")

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
        text = listing(len(drugs), "and", [DRUGS[d][1] for d in drugs])
        return text, [med(d, **flags) for d in drugs]
