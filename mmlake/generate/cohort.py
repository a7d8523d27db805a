"""The latent model behind the synthetic cohort.

Every patient is drawn from a small, documented causal model (see ``docs/synthetic_cohort.md``).
Each modality observes a *different* latent factor, noisily, so that no single modality can
recover the outcome and fusion has something real to gain:

* EHR       -> stage, labs (nutrition/inflammation ``n``, part of tumour burden ``b``), ECOG (``f``)
* genomics  -> driver mutations (prognostic IDH1, actionable EGFR/KRAS G12C/BRAF/PIK3CA)
* imaging   -> lesion size (tumour burden ``b``) and texture heterogeneity (``h``)
* notes     -> symptom burden (``s``), ECOG mentions (``f``)
* wearables -> activity decline (``a``)

The cross-modal interaction is targeted therapy: it helps only when the tumour carries the
matching actionable driver (genomics x EHR medication), and less so in heterogeneous tumours
(imaging), mirroring acquired resistance in subclonal disease.

Patients are generated one at a time from a per-patient random stream, so the cohort is
deterministic for a seed, independent of chunking, and streams in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from mmlake.generate.reference import (
    CANCER_TYPES,
    ETHNICITIES,
    FAMILY_NAMES,
    GIVEN_NAMES_FEMALE,
    GIVEN_NAMES_MALE,
    INSTITUTIONS,
    RACES,
    TP53_HOTSPOTS,
    CancerType,
    Driver,
    Therapy,
)

MODALITIES: tuple[str, ...] = ("ehr", "genomics", "imaging", "notes", "wearables")

# Diagnoses are spread over five and a half years so that follow-up windows, date shifting and
# time-travel queries all have realistic calendars to work with.
DIAGNOSIS_START = dt.date(2019, 1, 1)
DIAGNOSIS_SPAN_DAYS = 2000
FOLLOW_UP_DAYS = 365


@dataclass(frozen=True)
class ModalityRates:
    """Probability that a patient has each modality (EHR is always present).

    Genomic testing is ordered more often in advanced disease, as in practice; ``genomics`` is the
    rate at an average stage and shifts with stage on the logit scale.
    """

    genomics: float = 0.60
    imaging: float = 0.70
    notes: float = 0.95
    wearables: float = 0.30

    def __post_init__(self) -> None:
        for name in ("genomics", "imaging", "notes", "wearables"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"modality rate {name}={value} is outside [0, 1]")


@dataclass(frozen=True)
class Latent:
    """Standard-normal latent factors; higher is worse for every one of them."""

    burden: float  # b: tumour burden -> lesion size, LDH
    heterogeneity: float  # h: intratumoural heterogeneity -> image texture
    symptoms: float  # s: symptom burden -> affirmed symptoms in notes
    frailty: float  # f: performance status -> ECOG (EHR and notes)
    activity_decline: float  # a: -> falling step counts on wearables
    nutrition: float  # n: inflammation / poor nutrition -> low albumin, high LDH


@dataclass(frozen=True)
class PatientRecord:
    """One synthetic patient: identity, clinical truth and which modalities exist."""

    index: int
    patient_id: str  # FHIR logical id
    mrn: str
    given_name: str
    family_name: str
    sex: str  # FHIR administrative gender: male | female
    birth_date: dt.date
    phone: str
    address_line: str
    city: str
    postal_code: str
    cancer: CancerType
    stage: int  # 1..4 (glioblastoma: WHO grade 4, recorded as stage 4)
    diagnosis_date: dt.date
    age_at_diagnosis: int
    latent: Latent
    driver: Driver | None  # the somatic driver the tumour carries (truth, whether tested or not)
    targeted_therapy: bool  # received the therapy matched to its driver
    ecog: int
    label: int  # progression within 12 months of diagnosis
    progression_date: dt.date | None
    risk: float  # the model's progression probability
    modalities: frozenset[str] = field(default_factory=frozenset)
    tp53: Driver | None = None  # TP53 hotspot co-mutation, if any (truth)
    # First-line standard regimen and treating institution: decided once here so that the
    # EHR orders, the notes and the DICOM headers all tell the same story.
    regimen: tuple[Therapy, ...] = ()
    institution: str = INSTITUTIONS[0]
    # Research consent (FHIR Consent status: active | rejected | inactive) and, for an active
    # consent, the research study the patient is enrolled in (ResearchStudy identifier).
    research_consent: str = "active"
    study_id: str | None = None
    # Race and ethnicity (CDC Race & Ethnicity codes, "" = not recorded): the subgroups the
    # model evaluation reports on. Independent of the outcome: no disparity is planted.
    race: str = ""
    ethnicity: str = ""
    # A planted near-duplicate: the earlier patient this one was drawn as a "near twin" of
    # (same cancer, stage, driver and modalities; latent factors within small noise), so that
    # similar-case search has a known nearest neighbour. None for everyone else.
    twin_of: PatientRecord | None = None
    # Brain metastases at diagnosis (truth): told only by the notes (MRI brain in the consult),
    # the notes-only fact of the trial-eligibility criteria. Drawn after any near-twin
    # substitution, on the stream of the patient whose disease the record carries.
    brain_metastases: bool = False

    def has(self, modality: str) -> bool:
        """Whether this patient has data of ``modality`` in the raw files."""
        return modality in self.modalities


# The research studies of the cohort (ResearchStudy.identifier) and the share of consented
# patients each enrols. Consent is drawn on its own stream and independent of the outcome, so
# the governance row filters thin the cohort without biasing it.
RESEARCH_STUDIES: tuple[tuple[str, float], ...] = (("MMLAKE-ONC-001", 0.6), ("MMLAKE-ONC-002", 0.4))
CONSENT_ACTIVE_RATE = 0.85
CONSENT_REJECTED_SHARE = 2 / 3  # of the others: declined outright; the rest later withdrew


def stream_rng(seed: int, index: int, purpose: str) -> np.random.Generator:
    """A random stream private to one patient and one purpose.

    Keyed by (seed, patient index, purpose) so that adding a modality writer, or generating in
    another chunking, never changes any other stream: same seed, same bytes.
    """
    return np.random.default_rng([seed, index, zlib.crc32(purpose.encode())])


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _ecog_from_frailty(frailty: float, stage: int, rng: np.random.Generator) -> int:
    score = 0.9 * frailty + 0.25 * (stage - 2.5) + rng.normal(0, 0.45)
    cuts = (-0.6, 0.5, 1.4, 2.2)
    return int(sum(score > c for c in cuts))


def progression_logit(
    cancer: CancerType,
    stage: int,
    latent: Latent,
    driver: Driver | None,
    targeted_therapy: bool,
    tp53: Driver | None = None,
) -> float:
    """Log-odds of progression within 12 months: the documented outcome model."""
    x = cancer.baseline_logit + 0.55 * (stage - 2.5)
    x += 0.60 * latent.burden + 0.50 * latent.heterogeneity + 0.55 * latent.symptoms
    x += 0.45 * latent.frailty + 0.80 * latent.activity_decline + 0.40 * latent.nutrition
    if driver is not None:
        x += driver.prognostic_logit
        if targeted_therapy:
            # Matched therapy works, less so in heterogeneous (subclonal) tumours.
            x += -1.40 + 0.50 * latent.heterogeneity
    if tp53 is not None:
        x += tp53.prognostic_logit
    return x


def _choose_modalities(
    rates: ModalityRates, stage: int, rng: np.random.Generator
) -> frozenset[str]:
    present = {"ehr"}
    genomics_logit = (
        math.log(rates.genomics / (1 - rates.genomics)) if 0 < rates.genomics < 1 else None
    )
    if genomics_logit is None:
        p_genomics = rates.genomics
    else:
        p_genomics = _logistic(genomics_logit + 0.45 * (stage - 2.5))
    draws = rng.random(4)
    if draws[0] < p_genomics:
        present.add("genomics")
    if draws[1] < rates.imaging:
        present.add("imaging")
    if draws[2] < rates.notes:
        present.add("notes")
    if draws[3] < rates.wearables:
        present.add("wearables")
    return frozenset(present)


def make_patient(index: int, seed: int, rates: ModalityRates) -> PatientRecord:
    """Draw patient ``index`` of the cohort for ``seed`` (a near twin for about 3% of them)."""
    patient = _draw_patient(index, seed, rates)
    source = _twin_source(index, seed, rates)
    patient = patient if source is None else _near_twin(patient, source, seed)
    return replace(patient, brain_metastases=_brain_metastases(seed, patient))


# Share of patients with brain metastases at diagnosis, by (cancer, stage): common in stage IV
# lung cancer and melanoma, occasional in stage IV breast and colorectal cancer.
BRAIN_METASTASIS_RATES: dict[tuple[str, int], float] = {
    ("nsclc", 4): 0.25,
    ("melanoma", 4): 0.25,
    ("breast", 4): 0.10,
    ("colorectal", 4): 0.05,
}


def _brain_metastases(seed: int, patient: PatientRecord) -> bool:
    """Whether the patient has brain metastases at diagnosis (own stream; a twin's source's)."""
    rate = BRAIN_METASTASIS_RATES.get((patient.cancer.key, patient.stage), 0.0)
    owner = patient.twin_of.index if patient.twin_of is not None else patient.index
    return bool(stream_rng(seed, owner, "cohort:brain_metastases").random() < rate)


# Planted near-duplicates for similar-case search (docs/synthetic_cohort.md "Near twins").
# Decided on their own streams, so every other patient keeps its bytes.
TWIN_RATE = 0.03
TWIN_LATENT_SD = 0.05
_TWIN_TRIES = 20


def _is_twin(seed: int, index: int) -> bool:
    return index > 0 and stream_rng(seed, index, "cohort:twin").random() < TWIN_RATE


def _twin_source(index: int, seed: int, rates: ModalityRates) -> PatientRecord | None:
    """The earlier, imaged, non-twin patient that ``index`` is a near twin of (or None)."""
    if not _is_twin(seed, index):
        return None
    rng = stream_rng(seed, index, "cohort:twin:source")
    for _ in range(_TWIN_TRIES):
        candidate = int(rng.integers(0, index))
        if _is_twin(seed, candidate):
            continue
        source = _draw_patient(candidate, seed, rates)
        if source.has("imaging"):
            return source
    return None


def _near_twin(patient: PatientRecord, source: PatientRecord, seed: int) -> PatientRecord:
    """``patient``'s identity and calendar with ``source``'s disease, within small noise.

    Everything the modalities observe about the disease (cancer, stage, driver, latent
    factors, ECOG, regimen, institution, which modalities exist) follows the source, so the
    twin's lesion, labs, notes and activity nearly match; the outcome is re-drawn from the
    documented model so the label stays calibrated.
    """
    rng = stream_rng(seed, patient.index, "cohort:twin:draw")
    src = source.latent
    noise = rng.normal(0.0, TWIN_LATENT_SD, 6)
    latent = Latent(
        *(
            float(v + e)
            for v, e in zip(
                (
                    src.burden,
                    src.heterogeneity,
                    src.symptoms,
                    src.frailty,
                    src.activity_decline,
                    src.nutrition,
                ),
                noise,
                strict=True,
            )
        )
    )
    age = int(np.clip(source.age_at_diagnosis + int(rng.integers(-3, 4)), 22, 92))
    birth_date = patient.diagnosis_date - dt.timedelta(
        days=int(age * 365.25 + rng.integers(0, 365))
    )
    given = GIVEN_NAMES_FEMALE if source.sex == "female" else GIVEN_NAMES_MALE
    risk = _logistic(
        progression_logit(
            source.cancer, source.stage, latent, source.driver, source.targeted_therapy, source.tp53
        )
    )
    label = int(rng.random() < risk)
    progression_date = (
        patient.diagnosis_date + dt.timedelta(days=int(rng.integers(45, FOLLOW_UP_DAYS)))
        if label
        else None
    )
    return replace(
        patient,
        given_name=str(rng.choice(given)),
        sex=source.sex,
        birth_date=birth_date,
        cancer=source.cancer,
        stage=source.stage,
        age_at_diagnosis=age,
        latent=latent,
        driver=source.driver,
        targeted_therapy=source.targeted_therapy,
        ecog=source.ecog,
        label=label,
        progression_date=progression_date,
        risk=risk,
        modalities=source.modalities,
        tp53=source.tp53,
        regimen=source.regimen,
        institution=source.institution,
        twin_of=source,
    )


def _draw_patient(index: int, seed: int, rates: ModalityRates) -> PatientRecord:
    """Draw patient ``index`` from its own streams, before any near-twin substitution."""
    rng = stream_rng(seed, index, "cohort")
    cancer = CANCER_TYPES[
        int(rng.choice(len(CANCER_TYPES), p=[c.prevalence for c in CANCER_TYPES]))
    ]
    stage = int(rng.choice([1, 2, 3, 4], p=cancer.stage_distribution))
    sex = cancer.fixed_sex or ("female" if rng.random() < 0.5 else "male")
    given = GIVEN_NAMES_FEMALE if sex == "female" else GIVEN_NAMES_MALE
    age = int(np.clip(rng.normal(cancer.mean_age, 11), 22, 92))
    diagnosis_date = DIAGNOSIS_START + dt.timedelta(days=int(rng.integers(0, DIAGNOSIS_SPAN_DAYS)))
    birth_date = diagnosis_date - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    z = rng.normal(0, 1, 6)
    latent = Latent(
        burden=float(z[0] + 0.35 * (stage - 2.5)),
        heterogeneity=float(z[1]),
        symptoms=float(0.8 * z[2] + 0.2 * z[0]),
        frailty=float(0.85 * z[3] + 0.15 * (age - 63) / 11),
        activity_decline=float(z[4]),
        nutrition=float(z[5]),
    )
    driver = None
    u = rng.random()
    cumulative = 0.0
    for candidate in cancer.drivers:
        cumulative += candidate.frequency
        if u < cumulative:
            driver = candidate
            break
    # Matched therapy needs the driver to be known: from our lab or an outside report.
    targeted = bool(driver is not None and driver.therapy is not None and rng.random() < 0.7)
    ecog = _ecog_from_frailty(latent.frailty, stage, rng)
    # A separate stream, so that adding the co-mutation left every earlier draw unchanged.
    co_rng = stream_rng(seed, index, "cohort:tp53")
    tp53 = None
    if co_rng.random() < cancer.tp53_frequency:
        tp53 = TP53_HOTSPOTS[int(co_rng.integers(len(TP53_HOTSPOTS)))]
    logit = progression_logit(cancer, stage, latent, driver, targeted, tp53)
    care_rng = stream_rng(seed, index, "cohort:care")
    regimen = first_line_regimen(cancer, stage, care_rng)
    institution = INSTITUTIONS[int(care_rng.integers(len(INSTITUTIONS)))]
    risk = _logistic(logit)
    label = int(rng.random() < risk)
    progression_date = (
        diagnosis_date + dt.timedelta(days=int(rng.integers(45, FOLLOW_UP_DAYS))) if label else None
    )
    modalities = _choose_modalities(rates, stage, rng)
    research_consent, study_id = _research(seed, index)
    race, ethnicity = _race_ethnicity(seed, index)
    return PatientRecord(
        index=index,
        patient_id=_uuid(rng),
        mrn=f"MRN{int(rng.integers(10_000_000, 99_999_999))}",
        given_name=str(rng.choice(given)),
        family_name=str(rng.choice(FAMILY_NAMES)),
        sex=sex,
        birth_date=birth_date,
        phone=f"({rng.integers(201, 989)}) 555-{rng.integers(0, 10_000):04d}",
        address_line=f"{rng.integers(1, 9999)} {rng.choice(_STREETS)}",
        city=str(rng.choice(_CITIES)),
        postal_code=f"{rng.integers(1000, 99999):05d}",
        cancer=cancer,
        stage=stage,
        diagnosis_date=diagnosis_date,
        age_at_diagnosis=age,
        latent=latent,
        driver=driver,
        targeted_therapy=targeted,
        ecog=ecog,
        label=label,
        progression_date=progression_date,
        risk=risk,
        modalities=modalities,
        tp53=tp53,
        regimen=regimen,
        institution=institution,
        research_consent=research_consent,
        study_id=study_id,
        race=race,
        ethnicity=ethnicity,
    )


def _research(seed: int, index: int) -> tuple[str, str | None]:
    """The patient's research consent status and, when consented, the study they joined."""
    u_consent, u_study = stream_rng(seed, index, "cohort:research").random(2)
    if u_consent >= CONSENT_ACTIVE_RATE:
        share = (u_consent - CONSENT_ACTIVE_RATE) / (1 - CONSENT_ACTIVE_RATE)
        return ("rejected" if share < CONSENT_REJECTED_SHARE else "inactive"), None
    cumulative = 0.0
    for study_id, share in RESEARCH_STUDIES:
        cumulative += share
        if u_study < cumulative:
            return "active", study_id
    return "active", RESEARCH_STUDIES[-1][0]


def _race_ethnicity(seed: int, index: int) -> tuple[str, str]:
    """The race and ethnicity codes the chart records ("" when it records none).

    Drawn on their own stream, so adding them left every earlier draw (and byte) unchanged.
    """
    u_race, u_ethnicity = stream_rng(seed, index, "cohort:race_ethnicity").random(2)
    return _pick(RACES, float(u_race)), _pick(ETHNICITIES, float(u_ethnicity))


def _pick(table: tuple[tuple[str, str, float], ...], u: float) -> str:
    """The code whose cumulative share first exceeds ``u``; "" past the table's total share."""
    cumulative = 0.0
    for code, _display, share in table:
        cumulative += share
        if u < cumulative:
            return code
    return ""


def first_line_regimen(
    cancer: CancerType, stage: int, rng: np.random.Generator
) -> tuple[Therapy, ...]:
    """The standard first-line drugs this patient receives (targeted therapy comes on top)."""
    regimen = cancer.standard_therapy
    if cancer.key == "melanoma":  # one checkpoint inhibitor, not both
        return (regimen[int(rng.integers(len(regimen)))],)
    if cancer.key == "breast":  # a taxane for higher stage, endocrine therapy for HR+ disease
        keep = (stage >= 2 or rng.random() < 0.3, rng.random() < 0.7)
        chosen = tuple(d for d, k in zip(regimen, keep, strict=True) if k)
        return chosen or regimen[:1]
    return regimen


def iter_cohort(
    n_patients: int, seed: int, rates: ModalityRates | None = None
) -> Iterator[PatientRecord]:
    """Yield the cohort one patient at a time (bounded memory at any size)."""
    rates = rates or ModalityRates()
    for index in range(n_patients):
        yield make_patient(index, seed, rates)


def _uuid(rng: np.random.Generator) -> str:
    raw = rng.integers(0, 256, 16, dtype=np.uint8)
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_uuid(rng: np.random.Generator) -> str:
    """A deterministic RFC 4122 version-4 UUID drawn from ``rng`` (for resource and DICOM ids)."""
    return _uuid(rng)


_STREETS = ("Maple Ave", "Oak St", "Cedar Rd", "Elm St", "Lakeview Dr", "Hillcrest Blvd", "Main St")
_CITIES = ("Springfield", "Riverton", "Fairview", "Greenville", "Madison", "Franklin", "Clinton")
