"""Clinical content of the synthetic EHR chart: the codes and schedules it is written with.

:mod:`mmlake.generate.ehr_fhir_resources` knows how a FHIR R4 resource is shaped; this module
holds what the oncology chart says in those resources: stage groups and procedures (SNOMED CT),
mCODE evidence types, each regimen drug's dosing and planned course, the targeted agents, the
problem-list comorbidities and the biopsy sites. Keeping the catalogue apart from the builders
lets a reader of the tests (which recompute features from the export) import the same tables
the chart was coded with, without the serialization machinery.
"""

from __future__ import annotations

import datetime as dt

from mmlake.generate.reference import CANCER_TYPES, TRAMETINIB

# SNOMED CT stage groups (tumour staging hierarchy, as in DICOM CID 3778) and, for glioblastoma,
# which has no AJCC stage, the WHO CNS grade finding.
STAGE_SNOMED: dict[int, tuple[str, str]] = {
    1: ("258215001", "Stage 1"),
    2: ("258219007", "Stage 2"),
    3: ("258224005", "Stage 3"),
    4: ("258228008", "Stage 4"),
}
WHO_GRADE_4 = ("396925001", "World Health Organization grade IV central nervous system tumor")

# Procedures (SNOMED CT).
BIOPSY = ("86273004", "Biopsy")
RESECTION = ("370612006", "Excision of neoplasm")
RADIOTHERAPY = ("108290001", "Radiation oncology AND/OR radiotherapy")

# mCODE evidence types behind a disease-status judgement.
EVIDENCE_IMAGING = ("363679005", "Imaging")
EVIDENCE_EXAM = ("5880005", "Physical examination procedure")

# Each regimen drug's course kind and the prescriber's sig. Kinds drive the course model:
# "iv" cytotoxic infusion in cycles, "io" checkpoint immunotherapy, "oral" daily tablets.
DOSING: dict[str, tuple[str, str]] = {
    "carboplatin": ("iv", "Carboplatin AUC 5 IV over 30 min, day 1 of each 21-day cycle"),
    "pemetrexed": ("iv", "Pemetrexed 500 mg/m2 IV, day 1 of each 21-day cycle"),
    "pembrolizumab": ("io", "Pembrolizumab 200 mg IV every 3 weeks"),
    "nivolumab": ("io", "Nivolumab 480 mg IV every 4 weeks"),
    "paclitaxel": ("iv", "Paclitaxel 80 mg/m2 IV weekly"),
    "letrozole": ("oral", "Letrozole 2.5 mg by mouth once daily"),
    "oxaliplatin": ("iv", "Oxaliplatin 85 mg/m2 IV, day 1 of each 14-day cycle (FOLFOX)"),
    "fluorouracil": ("iv", "Fluorouracil 400 mg/m2 IV bolus, then 2400 mg/m2 over 46 h q14d"),
    "temozolomide": ("oral", "Temozolomide 75 mg/m2 by mouth daily with radiotherapy"),
    "osimertinib": ("oral", "Osimertinib 80 mg by mouth once daily"),
    "sotorasib": ("oral", "Sotorasib 960 mg by mouth once daily"),
    "dabrafenib": ("oral", "Dabrafenib 150 mg by mouth twice daily"),
    "trametinib": ("oral", "Trametinib 2 mg by mouth once daily"),
    "alpelisib": ("oral", "Alpelisib 300 mg by mouth once daily with food"),
    "encorafenib": ("oral", "Encorafenib 300 mg by mouth once daily with cetuximab"),
    "ondansetron": ("oral", "Ondansetron 8 mg by mouth every 8 hours as needed for nausea"),
    "dexamethasone": ("oral", "Dexamethasone 4 mg by mouth twice daily"),
}
# Planned course (days) by kind, unless the drug's own schedule differs (FOLFOX 12 x 14 days,
# temozolomide 6 weeks with radiotherapy + 6 cycles, supportive meds for a few cycles).
COURSE_DAYS = {"iv": 126, "io": 730, "oral": 1825}
COURSE_OVERRIDE = {
    "temozolomide": 210,
    "oxaliplatin": 168,
    "fluorouracil": 168,
    "ondansetron": 120,
    "dexamethasone": 45,
}
# Targeted agents (RxNorm): every driver-matched therapy, plus trametinib given with dabrafenib.
# A reader recomputes the ``targeted_therapy`` feature as "any MedicationRequest with one of these".
TARGETED_RXNORM = frozenset(
    {d.therapy.rxnorm for c in CANCER_TYPES for d in c.drivers if d.therapy} | {TRAMETINIB.rxnorm}
)

# Problem-list comorbidities: (ICD-10-CM, SNOMED CT, text).
HYPERTENSION = (
    ("I10", "Essential (primary) hypertension"),
    ("38341003", "Hypertensive disorder, systemic arterial"),
    "Hypertension",
)
TYPE_2_DIABETES = (
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("44054006", "Diabetes mellitus type 2"),
    "Type 2 diabetes mellitus",
)
COPD = (
    ("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
    ("13645005", "Chronic obstructive lung disease"),
    "COPD",
)

# Where the primary tumour is biopsied / resected, by cancer key.
BODY_SITE = {
    "nsclc": "Lung",
    "breast": "Breast",
    "colorectal": "Colon",
    "melanoma": "Skin",
    "glioblastoma": "Brain",
}


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on ``day``, the way a reader computes age from Patient.birthDate."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
