"""The imaging writer: DICOM files a spec-following reader accepts, dirty files it rejects,
determinism, and a lesion whose features can be measured back from the pixels.

Files are read with pydicom exactly as an ingestion job would (``dcmread`` without ``force``,
strict value validation). The signal check segments the lesion from the pixels alone (no truth
mask): the lesion is a hole in its host organ's intensity range (lung below -400 HU, liver
75-140 HU) or, on post-gadolinium MR, the largest region above 900.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom import config
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from mmlake.generate.cohort import ModalityRates, iter_cohort
from mmlake.generate.imaging_dicom import (
    ImagingWriter,
    SeriesEncoder,
    plan_studies,
    series_dataset,
    slice_elements,
)
from mmlake.generate.truth import GenerationContext, TruthLog

ndimage = pytest.importorskip("scipy.ndimage")

SEED = 4242
PATIENTS = 90
REQUIRED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "InstitutionName",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "StudyID",
    "SeriesNumber",
    "InstanceNumber",
    "Modality",
    "BodyPartExamined",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "ContentDate",
    "StudyDescription",
    "SeriesDescription",
    "Manufacturer",
    "ManufacturerModelName",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "FrameOfReferenceUID",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "WindowCenter",
    "WindowWidth",
    "PhotometricInterpretation",
    "SamplesPerPixel",
)


def _generate(
    out: Path, seed: int, n: int, dirty_rate: float = 0.05, image_size: int = 64
) -> dict[str, int]:
    truth = TruthLog(out)
    ctx = GenerationContext(out, seed, dirty_rate, truth, image_size=image_size)
    writer = ImagingWriter(ctx)
    for patient in iter_cohort(n, seed, ModalityRates()):
        truth.patient(patient)
        writer.add(patient)
    counts = writer.close()
    truth.close()
    return counts


def _dirty(out: Path) -> dict[str, dict[str, str]]:
    with (out / "_truth" / "dirty_records.csv").open(encoding="utf-8") as handle:
        return {r["file"]: r for r in csv.DictReader(handle) if r["modality"] == "imaging"}


def _files(out: Path) -> list[Path]:
    return sorted((out / "imaging").rglob("*.dcm"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imaging")
    counts = _generate(out, SEED, PATIENTS)
    assert counts["files"] == len(_files(out)) > 0
    assert counts["dirty"] == len(_dirty(out)) > 0
    return out


@pytest.fixture(scope="module")
def headers(cohort: Path) -> dict[str, pydicom.Dataset]:
    """Every file's header (also the truncated ones: their header is intact)."""
    return {
        p.relative_to(cohort).as_posix(): pydicom.dcmread(p, stop_before_pixels=True)
        for p in _files(cohort)
    }


@pytest.fixture
def strict_reading():
    """Invalid element values raise instead of warning, as a strict ingestion would have it."""
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    yield
    config.settings.reading_validation_mode = previous


def _readable(path: Path) -> bool:
    try:
        ds = pydicom.dcmread(path)
        return ds.pixel_array.shape == (ds.Rows, ds.Columns)
    except (InvalidDicomError, ValueError, EOFError):
        return False


@pytest.mark.usefixtures("strict_reading")
def test_every_clean_file_is_a_valid_dicom_file_with_pixels(cohort: Path) -> None:
    dirty = _dirty(cohort)
    for path in _files(cohort):
        if path.relative_to(cohort).as_posix() in dirty:
            continue
        ds = pydicom.dcmread(path)
        meta = ds.file_meta
        assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID in (CTImageStorage, MRImageStorage)
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for keyword in REQUIRED:
            assert keyword in ds and ds[keyword].value not in (None, ""), (path, keyword)
        pixels = ds.pixel_array
        assert pixels.shape == (64, 64)
        assert pixels.dtype == (np.int16 if ds.Modality == "CT" else np.uint16)
        if ds.Modality == "CT":
            assert ds.KVP and ds.RescaleIntercept == -1024 and ds.RescaleSlope == 1
            hu = pixels * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            assert hu.min() >= -1024 and hu.max() <= 1023
        else:
            assert ds.MagneticFieldStrength and ds.EchoTime and ds.RepetitionTime
        assert path.name == f"IM{ds.InstanceNumber:06d}.dcm"
        assert path.parent.name == str(ds.SeriesNumber)
        assert path.parent.parent.name == ds.AccessionNumber


def test_series_are_consistent_and_link_to_their_patient(cohort: Path, headers) -> None:
    patients = {p.mrn: p for p in iter_cohort(PATIENTS, SEED, ModalityRates())}
    series: dict[str, list[pydicom.Dataset]] = defaultdict(list)
    for name, ds in headers.items():
        series[name.rsplit("/", 1)[0]].append(ds)
    sop_uids = [ds.SOPInstanceUID for ds in headers.values()]
    assert len(set(sop_uids)) == len(sop_uids)
    assert all(UID(uid).is_valid for uid in sop_uids)
    studies_per_patient: dict[str, int] = defaultdict(int)
    for folder, slices in series.items():
        slices.sort(key=lambda ds: ds.InstanceNumber)
        first = slices[0]
        for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
            assert len({ds[key].value for ds in slices}) == 1, (folder, key)
        assert [ds.InstanceNumber for ds in slices] == list(range(1, len(slices) + 1))
        assert 16 <= len(slices) <= 32
        positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in slices])
        assert np.allclose(np.diff(positions[:, 2]), float(first.SpacingBetweenSlices), atol=1e-3)
        assert np.allclose(positions[:, :2], positions[0, :2])
        fov = float(first.PixelSpacing[0]) * first.Columns
        assert (200 <= fov <= 255) if first.Modality == "MR" else (300 <= fov <= 400)
        patient = patients[first.PatientID]
        assert patient.has("imaging")
        assert str(first.PatientName) == f"{patient.family_name}^{patient.given_name}"
        assert first.PatientBirthDate == patient.birth_date.strftime("%Y%m%d")
        assert first.Modality == patient.cancer.imaging_modality
        assert first.BodyPartExamined == patient.cancer.body_part
        assert first.InstitutionName == patient.institution  # the same site as EHR and notes
        studies_per_patient[first.PatientID] += 1
    imaged = {mrn for mrn, p in patients.items() if p.has("imaging")}
    assert set(studies_per_patient) == imaged
    assert set(studies_per_patient.values()) <= {1, 2}


def test_dirty_files_are_exactly_the_listed_ones(cohort: Path, headers) -> None:
    dirty = _dirty(cohort)
    invalid = {p.relative_to(cohort).as_posix() for p in _files(cohort) if not _readable(p)}
    assert invalid == set(dirty)
    for name, row in dirty.items():
        assert row["kind"] == "truncated_dicom"
        assert row["locator"] == f"SOPInstanceUID={headers[name].SOPInstanceUID}"


def _digests(out: Path) -> dict[str, str]:
    paths = [*_files(out), out / "_truth" / "features.csv", out / "_truth" / "dirty_records.csv"]
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths
    }


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        _generate(tmp_path / name, seed, 14)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    assert set(a.values()).isdisjoint(c.values())


def test_series_encoder_writes_the_bytes_dcmwrite_writes() -> None:
    """The per-series encoding shortcut is byte-for-byte a full ``dcmwrite`` of each slice."""
    checked = set()
    for patient in iter_cohort(40, SEED, ModalityRates(imaging=1.0)):
        for plan in plan_studies(SEED, patient, 64):
            if (plan.body_part, plan.ordinal) in checked:
                continue
            checked.add((plan.body_part, plan.ordinal))
            dataset, encoder = (
                series_dataset(patient, plan),
                SeriesEncoder(series_dataset(patient, plan)),
            )
            for instance in (1, 2):
                pixels = np.random.default_rng(instance).bytes(64 * 64 * 2)
                position = ["-170.5", "-170.5", f"{-120 + 5 * instance}"]
                elements = slice_elements(
                    plan.sop_uid(SEED, 0, instance), instance, position, pixels
                )
                for element in elements.values():
                    dataset[element.tag] = element
                expected = io.BytesIO()
                pydicom.dcmwrite(expected, dataset, enforce_file_format=True)
                assert encoder.encode(elements) == expected.getvalue()
    assert {body for body, _ in checked} == {"CHEST", "ABDOMEN", "BRAIN"}


def test_image_size_changes_the_sampling_not_the_anatomy(tmp_path: Path) -> None:
    fov, diameters = {}, {}
    for size in (32, 96):
        out = tmp_path / str(size)
        _generate(out, SEED, 12, image_size=size)
        ds = pydicom.dcmread(_files(out)[0], stop_before_pixels=True)
        assert ds.Rows == ds.Columns == size
        fov[size] = float(ds.PixelSpacing[0]) * size
        features = pd.read_csv(out / "_truth" / "features.csv")
        diameters[size] = features.loc[features["feature"] == "lesion_diameter_mm", "value"]
    assert fov[32] == pytest.approx(fov[96], abs=0.01)  # PixelSpacing has 4 decimals
    assert diameters[32].tolist() == diameters[96].tolist()


def test_patients_without_imaging_get_no_study() -> None:
    rates = ModalityRates(imaging=0.0)
    patient = next(iter_cohort(1, SEED, rates))
    assert plan_studies(SEED, patient, 64) == []


def _segment(volume: np.ndarray, modality: str, body_part: str) -> np.ndarray:
    """The lesion from pixels only: a hole in its host organ, or the bright enhancing mass."""

    def largest(mask: np.ndarray) -> np.ndarray:
        labels, n = ndimage.label(mask)
        if n == 0:
            return mask
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        return labels == 1 + int(np.argmax(sizes))

    def holes(organ: np.ndarray) -> np.ndarray:
        filled = np.stack([ndimage.binary_fill_holes(s) for s in organ])
        return largest(filled & ~organ)

    if modality == "MR":
        bright = largest(volume > 900)
        return np.stack([ndimage.binary_fill_holes(s) for s in bright])
    if body_part == "CHEST":
        lungs = np.zeros_like(volume, dtype=bool)
        for k, plane in enumerate(volume < -400):  # air inside the body, slice by slice
            labels, _ = ndimage.label(plane)
            outside = np.unique(
                np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
            )
            lungs[k] = (labels > 0) & ~np.isin(labels, outside)
        return holes(lungs)
    liver = np.stack([largest(plane) for plane in (volume >= 75) & (volume <= 140)])
    return holes(liver)


def _measure(out: Path) -> pd.DataFrame:
    """Lesion diameter, volume and SD measured from the earliest (staging) series per MRN."""
    by_series: dict[Path, pydicom.Dataset] = {}
    for path in _files(out):
        if path.parent not in by_series:
            by_series[path.parent] = pydicom.dcmread(path, stop_before_pixels=True)
    staging: dict[str, Path] = {}
    for folder, ds in sorted(by_series.items(), key=lambda kv: kv[1].StudyDate):
        staging.setdefault(ds.PatientID, folder)
    rows = []
    for mrn, folder in staging.items():
        slices = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
        first = slices[0]
        volume = np.stack(
            [
                s.pixel_array * float(getattr(s, "RescaleSlope", 1))
                + float(getattr(s, "RescaleIntercept", 0))
                if _readable(p)
                else np.full((s.Rows, s.Columns), np.nan)
                for s, p in zip(slices, sorted(folder.glob("*.dcm")), strict=True)
            ]
        )
        # A truncated slice never shows the lesion: let it read as plain soft tissue.
        mask = _segment(np.nan_to_num(volume, nan=0.0), first.Modality, first.BodyPartExamined)
        spacing = float(first.PixelSpacing[0])
        diameters = []
        for plane in mask:
            pts = np.argwhere(plane) * spacing
            if len(pts):
                d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).max()
                diameters.append(d + spacing)  # centre-to-centre plus one pixel: the extent
        rows.append(
            {
                "mrn": mrn,
                "n_slices": len(slices),
                "diameter": max(diameters, default=0.0),
                "volume": mask.sum() * spacing**2 * float(first.SpacingBetweenSlices) / 1000,
                "sd": float(volume[mask].std()) if mask.any() else 0.0,
            }
        )
    return pd.DataFrame(rows).set_index("mrn")


def test_lesion_features_can_be_measured_back_from_the_pixels(cohort: Path) -> None:
    patients = pd.read_csv(cohort / "_truth" / "patients.csv").set_index("patient_id")
    features = pd.read_csv(cohort / "_truth" / "features.csv")
    features = features[features["modality"] == "imaging"]
    # One SD column whatever the unit (HU for CT, arbitrary MR units for MR).
    features["feature"] = features["feature"].replace(
        {"lesion_intensity_std": "lesion_hu_std", "lesion_mean_intensity": "lesion_mean_hu"}
    )
    truth = features.pivot(index="patient_id", columns="feature", values="value")
    truth = truth.join(patients[["mrn", "latent_burden", "latent_heterogeneity"]])
    assert truth["mrn"].isin(patients.loc[patients["has_imaging"] == 1, "mrn"]).all()
    assert len(truth) == (patients["has_imaging"] == 1).sum()
    measured = _measure(cohort).reindex(truth["mrn"])
    assert (measured["n_slices"].to_numpy() == truth["n_slices"].to_numpy()).all()

    def rho(a: pd.Series, b: pd.Series) -> float:
        return float(pd.Series(a.to_numpy()).corr(pd.Series(b.to_numpy()), method="spearman"))

    assert rho(truth["lesion_diameter_mm"], measured["diameter"]) > 0.8
    assert rho(truth["lesion_volume_ml"], measured["volume"]) > 0.8
    assert rho(truth["lesion_hu_std"], measured["sd"]) > 0.8
    # And the features carry the latent factors they are meant to observe.
    assert rho(truth["lesion_diameter_mm"], truth["latent_burden"]) > 0.7
    ct = truth["lesion_mean_hu"] < 500
    assert rho(truth.loc[ct, "lesion_hu_std"], truth.loc[ct, "latent_heterogeneity"]) > 0.6
