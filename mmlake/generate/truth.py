"""Ground truth written beside the raw files, for tests and evaluation only.

``DIR/_truth`` is never ingested. It records what the raw files *mean* (the latent model's
draws, the observable features each modality carries, the records corrupted on purpose and the
assertions of every symptom mention in the notes) so that later stages can be checked against it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from mmlake.generate.cohort import PatientRecord
from mmlake.generate.reference import RACE_ETHNICITY_DISPLAY

TRUTH_DIR = "_truth"

PATIENT_COLUMNS = (
    "patient_id",
    "index",
    "mrn",
    "cancer",
    "stage",
    "diagnosis_date",
    "age_at_diagnosis",
    "sex",
    "driver",
    "targeted_therapy",
    "ecog",
    "label",
    "progression_date",
    "risk",
    "latent_burden",
    "latent_heterogeneity",
    "latent_symptoms",
    "latent_frailty",
    "latent_activity_decline",
    "latent_nutrition",
    "has_ehr",
    "has_genomics",
    "has_imaging",
    "has_notes",
    "has_wearables",
    "research_consent",
    "study_id",
    "institution",
    "race",
    "ethnicity",
    "brain_metastases",
)
DIRTY_COLUMNS = ("modality", "kind", "file", "locator", "reason")
FEATURE_COLUMNS = ("patient_id", "modality", "feature", "value")
# Planted near-duplicates (cohort.TWIN_RATE): the nearest case similar-case search must find.
SIMILAR_PAIR_COLUMNS = ("patient_id", "mrn", "twin_of_patient_id", "twin_of_mrn")
MENTION_COLUMNS = (
    "note_id",
    "patient_id",
    "concept",
    "category",
    "text",
    "negated",
    "uncertain",
    "historical",
    "hypothetical",
    "family",
    "section",
)


class TruthLog:
    """Streams ground-truth rows to CSV files (bounded memory at any cohort size)."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir / TRUTH_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._handles: list[IO[str]] = []
        self._patients = self._open("patients.csv", PATIENT_COLUMNS)
        self._dirty = self._open("dirty_records.csv", DIRTY_COLUMNS)
        self._features = self._open("features.csv", FEATURE_COLUMNS)
        self._mentions = self._open("note_mentions.csv", MENTION_COLUMNS)
        self._pairs = self._open("similar_pairs.csv", SIMILAR_PAIR_COLUMNS)
        self.dirty_counts: dict[tuple[str, str], int] = {}

    def _open(self, name: str, columns: tuple[str, ...]) -> Any:
        handle = (self.dir / name).open("w", newline="", encoding="utf-8")
        self._handles.append(handle)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        return writer

    def patient(self, p: PatientRecord) -> None:
        lat = p.latent
        self._patients.writerow(
            [
                p.patient_id,
                p.index,
                p.mrn,
                p.cancer.key,
                p.stage,
                p.diagnosis_date.isoformat(),
                p.age_at_diagnosis,
                p.sex,
                p.driver.label if p.driver else "",
                int(p.targeted_therapy),
                p.ecog,
                p.label,
                p.progression_date.isoformat() if p.progression_date else "",
                f"{p.risk:.6f}",
                *(
                    f"{v:.6f}"
                    for v in (
                        lat.burden,
                        lat.heterogeneity,
                        lat.symptoms,
                        lat.frailty,
                        lat.activity_decline,
                        lat.nutrition,
                    )
                ),
                *(int(p.has(m)) for m in ("ehr", "genomics", "imaging", "notes", "wearables")),
                p.research_consent,
                p.study_id or "",
                p.institution,
                # Displays of the CDC codes the Patient carries; empty when none is recorded.
                RACE_ETHNICITY_DISPLAY.get(p.race, ""),
                RACE_ETHNICITY_DISPLAY.get(p.ethnicity, ""),
                int(p.brain_metastases),  # told by the notes only (trial eligibility)
            ]
        )
        if p.twin_of is not None:
            self._pairs.writerow([p.patient_id, p.mrn, p.twin_of.patient_id, p.twin_of.mrn])

    def dirty(self, modality: str, kind: str, file: str, locator: str, reason: str) -> None:
        """Record a record corrupted on purpose; ``file`` is relative to the output root."""
        self._dirty.writerow([modality, kind, file, locator, reason])
        key = (modality, kind)
        self.dirty_counts[key] = self.dirty_counts.get(key, 0) + 1

    def feature(self, patient_id: str, modality: str, feature: str, value: float) -> None:
        """An observable feature that a modality's raw files carry for this patient."""
        self._features.writerow([patient_id, modality, feature, f"{float(value):.6g}"])

    def mention(self, **row: Any) -> None:
        """One clinical concept mention in a note, with its true assertion flags."""
        self._mentions.writerow(
            [int(v) if isinstance(v, bool) else v for v in (row[c] for c in MENTION_COLUMNS)]
        )

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


class GenerationContext:
    """What every modality writer shares: output root, seed, dirty-data rate, truth log."""

    def __init__(
        self,
        out_dir: Path,
        seed: int,
        dirty_rate: float,
        truth: TruthLog,
        *,
        image_size: int = 64,
        vcf_batch_size: int = 48,
    ) -> None:
        if not 0.0 <= dirty_rate < 0.5:
            raise ValueError(f"dirty rate {dirty_rate} must be in [0, 0.5)")
        if image_size < 32:
            raise ValueError(f"image size {image_size} is too small to hold a lesion (min 32)")
        if vcf_batch_size < 1:
            raise ValueError("a sequencing batch needs at least one sample")
        self.out_dir = out_dir
        self.seed = seed
        self.dirty_rate = dirty_rate
        self.truth = truth
        self.image_size = image_size  # DICOM rows = columns
        self.vcf_batch_size = vcf_batch_size  # samples per multi-sample VCF (one sequencing run)

    def corrupt(self, rng: np.random.Generator) -> bool:
        """Decide, from the caller's own stream, whether the next record is dirtied."""
        return bool(rng.random() < self.dirty_rate)

    def relative(self, path: Path) -> str:
        """Path as recorded in ``_truth``: relative to the output root, with forward slashes."""
        return path.relative_to(self.out_dir).as_posix()


class ModalityWriter(Protocol):
    """A streaming writer of one modality's raw files.

    ``add`` is called once per patient in cohort order (also for patients without the modality,
    so a writer may keep cohort-level state such as sequencing batches); ``close`` flushes what
    is buffered and returns counts for the summary table (e.g. ``{"files": 3, "records": 120}``).
    """

    modality: str

    def add(self, patient: PatientRecord) -> None: ...

    def close(self) -> dict[str, int]: ...
