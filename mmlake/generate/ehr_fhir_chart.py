"""One patient's first year as the oncology EHR charts it: the resources of the FHIR export.

:class:`Chart` lays out the visits and what each records (see :mod:`mmlake.generate.ehr_fhir` for
the story and the planted signal); :class:`~mmlake.generate.ehr_fhir.EhrWriter` serializes the
entries, damages a few leaves and writes the Bulk Data files. The imaging visits are the DICOM
studies of ``imaging_dicom.plan_studies``, charted by :mod:`mmlake.generate.ehr_fhir_imaging`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmlake.generate import ehr_fhir_codes as clinical
from mmlake.generate import ehr_fhir_imaging as imaging
from mmlake.generate import ehr_fhir_resources as fhir
from mmlake.generate import reference as refdata
from mmlake.generate.cohort import FOLLOW_UP_DAYS, PatientRecord, new_uuid, stream_rng
from mmlake.generate.ehr_fhir_resources import Head
from mmlake.generate.imaging_dicom import StudyPlan

_SUBSTAGES = {1: ("A", "B"), 2: ("A", "B"), 3: ("A", "B", "C"), 4: ("", "A", "B")}
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


@dataclass(frozen=True)
class Entry:
    resource: fhir.Resource
    protected: bool  # identity, a feature or the label depends on it: never corrupted


class Chart:
    """One patient's first year in the EHR, in chart order (a few dozen resources).

    Draws come from the patient's own streams, ``ehr:ids`` for resource ids and
    ``ehr:clinical`` for everything clinical, so the same seed gives the same chart.
    """

    def __init__(self, patient: PatientRecord, seed: int, studies: list[StudyPlan]) -> None:
        self.p, self.studies = patient, studies
        self.rng = stream_rng(seed, patient.index, "ehr:clinical")
        self._ids = stream_rng(seed, patient.index, "ehr:ids")
        self.entries: list[Entry] = []
        self.features: dict[str, float] = {}
        self.latest = self._at(0)
        self.cancer_id = new_uuid(self._ids)
        progression = patient.progression_date
        self.prog_day = (progression - patient.diagnosis_date).days if progression else None
        self.hypertensive = False
        self.weight0 = 0.0

    def _emit(self, res: fhir.Resource, protected: bool = False) -> str:
        self.entries.append(Entry(res, protected))
        return res["id"]

    def _at(self, day: int) -> dt.datetime:
        """A clinic time on diagnosis day + ``day`` (5-minute slots, 08:00-16:30)."""
        slot = int(self.rng.integers(96, 199))
        date = self.p.diagnosis_date + dt.timedelta(days=day)
        return dt.datetime.combine(date, dt.time(slot // 12, slot % 12 * 5), fhir.CLINIC_TZ)

    def _head(self, t: dt.datetime, enc: str | None = None, rid: str | None = None) -> Head:
        """Id and meta.lastUpdated: the event plus a documentation lag of 20 min to 2 days."""
        updated = t + dt.timedelta(minutes=int(self.rng.integers(20, 2880)))
        self.latest = max(self.latest, updated)
        return Head(rid or new_uuid(self._ids), self.p.patient_id, updated, enc)

    def _progressed(self, day: int) -> bool:
        return self.prog_day is not None and day >= self.prog_day

    def _visit(
        self, day: int | dt.datetime, kind: str, stay_days: int = 0
    ) -> tuple[str, dt.datetime]:
        """An encounter on diagnosis day + ``day`` at a clinic time, or starting at ``day``."""
        start = day if isinstance(day, dt.datetime) else self._at(day)
        if stay_days:  # inpatient: discharged late morning after the stay
            discharge = start.date() + dt.timedelta(days=stay_days)
            end = dt.datetime.combine(discharge, dt.time(11, 0), fhir.CLINIC_TZ)
        else:
            end = start + dt.timedelta(minutes=int(self.rng.integers(20, 120)))
        res = fhir.encounter(self._head(end), stay_days > 0, kind, start, end, self.p.institution)
        return self._emit(res), start

    def _observe(self, enc: str, t: dt.datetime, *spec: Any, **kw: Any) -> None:
        """Observation at ``t``; ``spec`` = (loinc, category, value elements)."""
        protected, rid = kw.pop("protected", False), kw.pop("rid", None)
        loinc, category, value = spec
        res = fhir.observation(self._head(t, enc, rid), loinc, category, t, value, **kw)
        self._emit(res, protected)

    def _procedure(self, enc: str, t: dt.datetime, code: tuple[str, str], site: str) -> None:
        self._emit(fhir.procedure(self._head(t, enc), code, t, site, self.cancer_id))

    def build(self) -> None:
        p, rng = self.p, self.rng
        site = clinical.BODY_SITE[p.cancer.key]
        enc, t = self._visit(-int(rng.integers(2, 15)), "Diagnostic procedure visit")
        self._procedure(enc, t, clinical.BIOPSY, site)
        self._diagnose(*self._visit(0, "Oncology consultation"))
        for study in self.studies:  # staging (and restaging): the studies held as DICOM
            enc, t = self._visit(imaging.started(study), "Diagnostic imaging")
            res = imaging.procedure(self._head(t, enc), study, self.cancer_id)
            proc = self._emit(res, protected=True)  # provenance: the report -> DICOM link
            self._emit(imaging.imaging_study(self._head(t, enc), study, proc, self.cancer_id))
        glioblastoma = p.cancer.key == "glioblastoma"
        # Early-stage solid tumours are resected; glioblastoma gets maximal safe resection when
        # feasible, then temozolomide with radiotherapy (Stupp protocol).
        if (p.stage <= 2 and not glioblastoma) or (glioblastoma and rng.random() < 0.7):
            day = int(rng.integers(1, 11) if glioblastoma else rng.integers(7, 36))
            enc, t = self._visit(day, "Surgical admission", stay_days=int(rng.integers(1, 7)))
            self._procedure(enc, t + dt.timedelta(hours=2), clinical.RESECTION, site)
        self._treat(int(rng.integers(14, 31)), glioblastoma)
        if p.targeted_therapy and p.driver is not None and p.driver.therapy is not None:
            # Started once the sequencing report is back, a few weeks after diagnosis.
            day = int(rng.integers(31, 46))
            enc, t = self._visit(day, "Targeted therapy start")
            self._prescribe(enc, t, day, p.driver.therapy, protected=True)
            if p.driver.therapy.name == "dabrafenib":  # BRAF V600E: with the MEK inhibitor
                self._prescribe(enc, t, day, refdata.TRAMETINIB, protected=True)
        self._follow_up()
        self._emit(fhir.patient(p, self.latest), protected=True)
        self.features |= {
            "stage": p.stage,
            "age_at_diagnosis": clinical.age_on(p.birth_date, p.diagnosis_date),
            "ecog": p.ecog,
            "targeted_therapy": int(p.targeted_therapy),
        }

    def _diagnose(self, enc: str, t: dt.datetime) -> None:
        """Cancer Condition with its stage, the problem list, baseline labs, ECOG and vitals."""
        p, rng, c = self.p, self.rng, self.p.cancer
        if c.key == "glioblastoma":  # no AJCC stage: the WHO CNS grade stands in
            summary = fhir.concept(
                fhir.coding(fhir.SNOMED, *clinical.WHO_GRADE_4), text="WHO grade 4"
            )
        else:
            text = f"Stage {_ROMAN[p.stage]}{rng.choice(_SUBSTAGES[p.stage])}"
            summary = fhir.concept(
                fhir.coding(fhir.SNOMED, *clinical.STAGE_SNOMED[p.stage]), text=text
            )
        stage_obs = new_uuid(self._ids)
        stage = {
            "summary": summary,
            "assessment": [fhir.ref("Observation", stage_obs)],
            "type": fhir.loinc_concept(refdata.STAGE_GROUP),
        }
        codes = ((c.icd10cm, c.icd10cm_display), (c.snomed, c.display))
        h = self._head(t, enc, self.cancer_id)
        cond = fhir.condition(
            h, codes, c.display, "encounter-diagnosis", p.diagnosis_date, t, stage
        )
        self._emit(cond, protected=True)
        stage_value = {"valueCodeableConcept": summary}
        kw = {
            "rid": stage_obs,
            "profile": "mcode-cancer-stage",
            "focus_condition_id": self.cancer_id,
        }
        self._observe(enc, t, refdata.STAGE_GROUP, "exam", stage_value, protected=True, **kw)
        # Comorbidity rates of an older oncology population; COPD tracks smoking (lung cancer).
        age = p.age_at_diagnosis
        rates = (
            (clinical.HYPERTENSION, float(np.clip(0.45 + 0.008 * (age - 63), 0.15, 0.75))),
            (clinical.TYPE_2_DIABETES, float(np.clip(0.20 + 0.004 * (age - 63), 0.05, 0.35))),
            (clinical.COPD, 0.35 if c.key == "nsclc" else 0.08),
        )
        n_comorbid = 0
        for (icd, sct, text), rate in rates:
            if rng.random() >= rate:
                continue
            n_comorbid += 1
            self.hypertensive |= icd[0] == "I10"
            onset = p.diagnosis_date - dt.timedelta(days=int(rng.integers(365, 15 * 365)))
            cond = fhir.condition(self._head(t), (icd, sct), text, "problem-list-item", onset, t)
            self._emit(cond, protected=True)
        self.features["n_comorbidities"] = n_comorbid
        self._labs(enc, t, 0, diagnosis=True)
        self._observe(enc, t, refdata.ECOG, "survey", {"valueInteger": p.ecog}, protected=True)
        self.weight0 = float(np.clip(rng.normal(84 if p.sex == "male" else 71, 13), 42, 160))
        self._vitals(enc, t, 0)

    def _labs(self, enc: str, t: dt.datetime, day: int, diagnosis: bool = False) -> None:
        """The planted signal: LDH (burden, nutrition), albumin (nutrition); also Hb and CEA."""
        p, rng = self.p, self.rng
        b, n = p.latent.burden, p.latent.nutrition
        progressed = self._progressed(day)
        # After baseline, values follow the disease: up at progression, a little down on therapy.
        shift = 0.0 if diagnosis else (0.35 if progressed else -0.08)
        ldh = round(180 * math.exp(0.22 * b + 0.18 * n + rng.normal(0, 0.12) + shift))
        albumin = 4.1 - 0.30 * n + rng.normal(0, 0.2) - (0.3 if progressed else 0.0)
        albumin = round(float(np.clip(albumin, 1.8, 5.4)), 1)
        male = p.sex == "male"
        hgb = (14.6 if male else 13.1) - 0.35 * b - 0.2 * n + rng.normal(0, 0.8)
        hgb = round(float(np.clip(hgb - (0.0 if diagnosis else 0.6), 6.5, 18.5)), 1)
        results = [
            (refdata.LDH, ldh, (140.0, 280.0), diagnosis),
            (refdata.ALBUMIN, albumin, (3.5, 5.0), diagnosis),
            (refdata.HEMOGLOBIN, hgb, (13.5, 17.5) if male else (12.0, 15.5), False),
        ]
        if p.cancer.tumor_marker_loinc == refdata.CEA.code:
            cea = 2.0 * math.exp(0.7 * b + rng.normal(0, 0.5) + (0.6 if progressed else 0.0))
            results.append((refdata.CEA, round(cea, 1), (None, 3.0), False))
        for loinc, value, (low, high), keep in results:
            v = fhir.lab_value(value, loinc.unit, low, high)
            self._observe(enc, t, loinc, "laboratory", v, protected=keep)
        if diagnosis:
            self.features |= {"ldh_at_diagnosis": ldh, "albumin_at_diagnosis": albumin}

    def _vitals(self, enc: str, t: dt.datetime, day: int) -> None:
        p, rng = self.p, self.rng
        heart_rate = int(np.clip(rng.normal(78 + 4 * p.latent.frailty, 10), 48, 130))
        systolic = int(np.clip(rng.normal(126 + 10 * self.hypertensive, 13), 90, 200))
        diastolic = int(np.clip(rng.normal(77 + 4 * self.hypertensive, 8), 50, 115))
        # Weight falls with poor nutrition over the year and drops at progression (cachexia).
        loss = 0.03 * max(p.latent.nutrition, 0.0) * day / 365 + 0.05 * self._progressed(day)
        weight = round(self.weight0 * (1 - loss + rng.normal(0, 0.008)), 1)
        for loinc, value in ((refdata.HEART_RATE, heart_rate), (refdata.BODY_WEIGHT, weight)):
            q = {"valueQuantity": fhir.quantity(value, loinc.unit)}
            self._observe(enc, t, loinc, "vital-signs", q)
        parts = [
            {"code": fhir.loinc_concept(loinc), "valueQuantity": fhir.quantity(v, loinc.unit)}
            for loinc, v in ((refdata.SYSTOLIC_BP, systolic), (refdata.DIASTOLIC_BP, diastolic))
        ]
        self._observe(
            enc, t, refdata.BP_PANEL, "vital-signs", {"component": parts}, text="Blood pressure"
        )

    def _treat(self, day: int, glioblastoma: bool) -> None:
        """First-line regimen, supportive meds, radiotherapy and the infusion visits."""
        p, rng = self.p, self.rng
        enc, t = self._visit(day, "Treatment planning visit")
        self._labs(enc, t, day)
        regimen = p.regimen
        for therapy in regimen:
            self._prescribe(enc, t, day, therapy)
        kinds = {clinical.DOSING[d.name][0] for d in regimen}
        emetogenic = "iv" in kinds or glioblastoma
        if rng.random() < (0.6 if emetogenic else 0.1):
            reason = "Chemotherapy-induced nausea and vomiting prophylaxis"
            self._prescribe(enc, t, day, refdata.ONDANSETRON, reason=reason)
        if rng.random() < (0.7 if glioblastoma else 0.25):
            reason = "Peritumoral cerebral edema" if glioblastoma else "Antiemetic premedication"
            self._prescribe(enc, t, day, refdata.DEXAMETHASONE, reason=reason)
        if glioblastoma:  # 60 Gy in 30 fractions, starting with temozolomide
            self._procedure(*self._visit(day, "Radiation oncology"), clinical.RADIOTHERAPY, "Brain")
        if kinds & {"iv", "io"}:
            cycle = 14 if p.cancer.key == "colorectal" else 21
            for k in range(1, 6):  # cycles 2-6: visits that no other record points to
                visit_day = day + k * cycle + int(rng.integers(0, 3))
                if self._progressed(visit_day) or visit_day > FOLLOW_UP_DAYS:
                    break
                self._visit(visit_day, "Chemotherapy infusion")

    def _prescribe(
        self,
        enc: str,
        t: dt.datetime,
        day: int,
        drug: refdata.Therapy,
        protected: bool = False,
        reason: str | None = None,
    ) -> None:
        """One order and its fate: completed, still active, or stopped (progression/toxicity).

        A cytotoxic dose reduction is a new order pointing at the stopped one (priorPrescription).
        """
        rng = self.rng
        kind, sig = clinical.DOSING[drug.name]
        end = day + clinical.COURSE_OVERRIDE.get(drug.name, clinical.COURSE_DAYS[kind])
        stop = (self.prog_day, "Disease progression") if reason is None and self.prog_day else None
        if kind == "io" and rng.random() < 0.08:
            toxicity = day + int(rng.integers(40, 200))
            if stop is None or toxicity < stop[0]:
                stop = (toxicity, "Immune-related adverse event")
        if kind == "iv" and rng.random() < 0.15:
            change = day + 21 * int(rng.integers(1, 3))
            if (stop is None or change < stop[0]) and change < end:
                prior = self._order(enc, t, day, drug, sig, (change, "Dose reduced"), end, None)
                enc, t = self._visit(change, "Chemotherapy infusion")
                sig = f"{sig}; dose reduced 20% for toxicity"
                self._order(enc, t, change, drug, sig, stop, end, None, prior=prior)
                return
        self._order(enc, t, day, drug, sig, stop, end, reason, protected=protected)

    def _order(
        self,
        enc: str,
        t: dt.datetime,
        day: int,
        drug: refdata.Therapy,
        sig: str,
        stop: tuple[int, str] | None,
        end: int,
        reason: str | None,
        protected: bool = False,
        prior: str | None = None,
    ) -> str:
        status, status_reason, last_day = "active", None, day
        if stop is not None and stop[0] < min(end, FOLLOW_UP_DAYS + 1):
            status, last_day, status_reason = "stopped", stop[0], stop[1]
        elif end <= FOLLOW_UP_DAYS:
            status, last_day = "completed", end
        # lastUpdated follows the order's last change (its stop or completion), not its start.
        h = self._head(t + dt.timedelta(days=last_day - day), enc)
        why = {"reason_text": reason} if reason else {"reason_condition_id": self.cancer_id}
        res = fhir.medication_request(h, drug, status, t, sig, **why)
        res |= fhir.order_history(status_reason, prior)
        return self._emit(res, protected)

    def _follow_up(self) -> None:
        """Restaging near 3, 6, 9 and 12 months plus one on the progression date: the outcome.

        Every status before ``progression_date`` is improved/stable; the one on that date and all
        later ones say worsened, so the label is exactly "any worsened status within 365 days".
        """
        rng = self.rng
        days = []
        for target in (90, 180, 270, FOLLOW_UP_DAYS):
            day = target + int(rng.integers(-7, 1 if target == FOLLOW_UP_DAYS else 8))
            attended = rng.random() < 0.9
            if attended and not (self.prog_day and abs(day - self.prog_day) <= 10):
                days.append(day)
        if self.prog_day is not None:
            days.append(self.prog_day)
        for day in sorted(days):
            enc, t = self._visit(day, "Oncology follow-up")
            status = refdata.STATUS_WORSENED if self._progressed(day) else refdata.STATUS_STABLE
            if status is refdata.STATUS_STABLE and rng.random() < 0.3:
                status = refdata.STATUS_IMPROVED
            evidence = clinical.EVIDENCE_IMAGING
            if day != self.prog_day and rng.random() < 0.25:
                evidence = clinical.EVIDENCE_EXAM
            self._observe(
                enc,
                t,
                refdata.DISEASE_STATUS,
                "exam",
                {"valueCodeableConcept": fhir.concept(fhir.coding(fhir.SNOMED, *status))},
                protected=True,
                profile="mcode-cancer-disease-status",
                evidence=evidence,
                focus_condition_id=self.cancer_id,
            )
            if rng.random() < 0.6:
                self._labs(enc, t, day)
            self._vitals(enc, t, day)
