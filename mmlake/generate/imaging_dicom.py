"""Imaging: staging CT/MR series written as a PACS export writes them (DICOM Part 10 files).

Layout: ``DIR/imaging/<AccessionNumber>/<SeriesNumber>/IM000001.dcm`` (one file per slice,
numbered by InstanceNumber; no names or MRNs in paths). Every file is a DICOM File Format
object (preamble, ``DICM``, File Meta Information) in Explicit VR Little Endian, SOP class CT
Image Storage or MR Image Storage. Patients link to the EHR through PatientID = MRN.

Each imaged patient has a staging study 1-10 days after the diagnosis date and, for about a
third, a restaging study 8-16 weeks after it. ``_truth/features.csv`` describes the *staging*
series (the earliest StudyDate of the MRN) only:

* ``lesion_diameter_mm``: the lesion's longest axial diameter (RECIST-style), measurable from the
  pixels to within about a pixel;
* ``lesion_volume_ml``: lesion voxels x PixelSpacing^2 x SpacingBetweenSlices / 1000;
* ``lesion_mean_hu`` / ``lesion_hu_std`` (CT) or ``lesion_mean_intensity`` /
  ``lesion_intensity_std`` (MR): mean and population SD of the real-world values
  (stored x RescaleSlope + RescaleIntercept for CT) over the lesion voxels;
* ``n_slices``: the number of images in the series.

The lesion is the one region of its intensity enclosed by its host organ: a hole in the lung
(< -400 HU) on chest CT, in the liver (75-140 HU) on abdominal CT, or the region above 900 on
brain MR; segmenting it so recovers volume and SD exactly in lung and brain, closely in liver.
The restaging lesion is drawn independently of the outcome (its size only rescattered), so later
studies never leak the label, but they postdate the staging: models must mind the time.

Dirty kind ``truncated_dicom``: a file cut inside its Pixel Data, as by an interrupted transfer.
``dcmread`` without ``force`` still parses it (the header is intact and ``stop_before_pixels``
reads it), but ``pixel_array`` raises ``ValueError`` (fewer bytes than Rows x Columns x 2). Slices
that show the lesion are never truncated, so the lesion features stay recomputable from the
valid files. The locator is ``SOPInstanceUID=<uid>``.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from mmlake.generate.cohort import PatientRecord, stream_rng
from mmlake.generate.imaging_phantom import (
    ANATOMIES,
    Geometry,
    Lesion,
    Scanner,
    lesion_diameter,
    make_geometry,
    place_lesion,
    render,
    scanner_for,
)
from mmlake.generate.reference import FAMILY_NAMES, GIVEN_NAMES_FEMALE, GIVEN_NAMES_MALE
from mmlake.generate.truth import GenerationContext

MODALITY = "imaging"
FOLLOW_UP_RATE = 0.35
# UIDs under the 2.25 arc (ITU-T X.667): the decimal form of a name-based (SHA-1) UUID of
# "seed/patient/study/...", so that they are deterministic, unique and need no registered root.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mmlake:generate:imaging")
# Accession numbers: an affine bijection of (patient index, study ordinal) modulo 10^10, so they
# look random, never collide within a cohort, and carry nothing identifying.
_ACCESSION_MULTIPLIER = 7_919_577_013
_SERIES_NUMBER = {"CT": 2, "MR": 8}  # axial post-contrast series (1 = scout / localizer)
CHARSET = "ISO_IR 192"  # UTF-8: patient and physician names such as Müller
# Elements that differ between the slices of a series; everything else is encoded once.
SOP_INSTANCE_UID, INSTANCE_NUMBER, PIXEL_DATA = 0x00080018, 0x00200013, 0x7FE00010
IMAGE_POSITION, SLICE_LOCATION = 0x00200032, 0x00201041
_PER_SLICE = (SOP_INSTANCE_UID, INSTANCE_NUMBER, IMAGE_POSITION, SLICE_LOCATION, PIXEL_DATA)


@dataclass(frozen=True)
class StudyPlan:
    """Everything about one study except its pixels; cheap, so other writers could reuse it."""

    ordinal: int  # 0 = staging, 1 = restaging
    accession: str
    study_id: str
    study_uid: str
    series_uid: str
    frame_uid: str
    when: dt.datetime  # study start
    modality: str  # CT | MR
    body_part: str
    institution: str
    scanner: Scanner
    referring: str  # DICOM PN of the ordering oncologist
    habitus: float  # body scale (0.9-1.05)
    geometry: Geometry
    lesion: Lesion
    tube_current_ma: int  # CT only, varies with habitus as dose modulation does

    @property
    def series_number(self) -> int:
        return _SERIES_NUMBER[self.modality]

    def sop_uid(self, seed: int, index: int, instance: int) -> str:
        return _uid(seed, index, self.ordinal, "sop", instance)


def _uid(*parts: object) -> str:
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, '/'.join(map(str, parts))).int}"


def _accession(seed: int, index: int, ordinal: int) -> str:
    offset = zlib.crc32(f"accession/{seed}".encode())
    return f"{(_ACCESSION_MULTIPLIER * (2 * index + ordinal) + offset) % 10**10:010d}"


def plan_studies(seed: int, patient: PatientRecord, image_size: int) -> list[StudyPlan]:
    """The imaging studies of ``patient`` (empty when it has no imaging)."""
    if not patient.has(MODALITY):
        return []
    # A planted near twin is scanned like its source (same habitus, organ, field of view and
    # lesion placement); its lesion size and texture follow its own, nearly equal, latent
    # factors and its pixels get their own noise, so the scans nearly but not exactly match.
    twin = patient.twin_of
    rng = stream_rng(seed, patient.index if twin is None else twin.index, "imaging:plan")
    cancer = patient.cancer
    anatomy = ANATOMIES[cancer.body_part]
    # The treating institution is decided in the cohort, so EHR, notes and DICOM agree on it.
    institution = patient.institution
    scanner = scanner_for(institution, cancer.imaging_modality)
    referring = (
        f"{rng.choice(FAMILY_NAMES)}^{rng.choice(GIVEN_NAMES_FEMALE + GIVEN_NAMES_MALE)}^^Dr"
    )
    habitus = float(rng.uniform(0.9, 1.05))
    host = anatomy.hosts[int(rng.integers(len(anatomy.hosts)))]
    diameter = lesion_diameter(patient.latent.burden, rng)
    # Staging follows the pathology diagnosis within days (as the EHR's imaging encounter).
    offsets = [int(rng.integers(1, 11))]
    if rng.random() < FOLLOW_UP_RATE:
        offsets.append(int(rng.integers(56, 113)))  # restaging after 2-4 cycles
    plans = []
    for ordinal, offset in enumerate(offsets):
        day = patient.diagnosis_date + dt.timedelta(days=offset)
        minutes = int(rng.integers(7 * 60 + 30, 18 * 60))
        when = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60, int(rng.integers(60))))
        geometry = make_geometry(anatomy, image_size, habitus, rng)
        size = diameter if ordinal == 0 else diameter * math.exp(float(rng.normal(0.0, 0.1)))
        lesion = place_lesion(
            anatomy, geometry, habitus, size, patient.latent.heterogeneity, host, rng
        )
        plans.append(
            StudyPlan(
                ordinal=ordinal,
                accession=_accession(seed, patient.index, ordinal),
                study_id=str(int(rng.integers(1000, 100_000))),
                study_uid=_uid(seed, patient.index, ordinal, "study"),
                series_uid=_uid(seed, patient.index, ordinal, "series"),
                frame_uid=_uid(seed, patient.index, ordinal, "frame"),
                when=when,
                modality=cancer.imaging_modality,
                body_part=cancer.body_part,
                institution=institution,
                scanner=scanner,
                referring=referring,
                habitus=habitus,
                geometry=geometry,
                lesion=lesion,
                tube_current_ma=round(220 * habitus**3 + float(rng.normal(0, 15))),
            )
        )
    return plans


def _age(birth: dt.date, on: dt.date) -> str:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return f"{years:03d}Y"


def _ds(value: float) -> str:
    """A Decimal String well within its 16 characters."""
    return f"{round(value, 4):.4f}".rstrip("0").rstrip(".")


def series_dataset(patient: PatientRecord, plan: StudyPlan) -> Dataset:
    """The header shared by every slice of the series; per-slice values are set by the writer."""
    g, ct = plan.geometry, plan.modality == "CT"
    anatomy = ANATOMIES[plan.body_part]
    sop_class = CTImageStorage if ct else MRImageStorage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = CHARSET
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"] if ct else ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = sop_class
    date, time = plan.when.strftime("%Y%m%d"), plan.when.strftime("%H%M%S")
    series_time = (plan.when + dt.timedelta(minutes=4)).strftime("%H%M%S")
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
    ds.StudyTime = time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series_time
    ds.AccessionNumber = plan.accession
    ds.Modality = plan.modality
    ds.Manufacturer = plan.scanner.manufacturer
    ds.InstitutionName = plan.institution
    ds.ReferringPhysicianName = plan.referring
    ds.StationName = plan.scanner.station
    ds.StudyDescription, ds.SeriesDescription = anatomy.descriptions
    ds.ManufacturerModelName = plan.scanner.model
    ds.PatientName = f"{patient.family_name}^{patient.given_name}"
    ds.PatientID = patient.mrn
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = "F" if patient.sex == "female" else "M"
    ds.PatientAge = _age(patient.birth_date, plan.when.date())
    ds.BodyPartExamined = plan.body_part
    ds.SliceThickness = _ds(anatomy.slice_thickness)
    ds.SpacingBetweenSlices = _ds(g.slice_spacing)
    ds.SoftwareVersions = plan.scanner.software
    ds.PatientPosition = "HFS"
    for keyword, value in anatomy.acquisition.items():
        setattr(ds, keyword, value)
    if ct:
        ds.ReconstructionDiameter = _ds(g.pixel_spacing * g.size)
        ds.XRayTubeCurrent = plan.tube_current_ma
        ds.ConvolutionKernel = plan.scanner.kernel_or_coil
    else:
        ds.ImagingFrequency = _ds(42.577478 * plan.scanner.field_strength)  # Larmor, MHz
        ds.MagneticFieldStrength = _ds(plan.scanner.field_strength)
        ds.ReceiveCoilName = plan.scanner.kernel_or_coil
    ds.StudyInstanceUID = plan.study_uid
    ds.SeriesInstanceUID = plan.series_uid
    ds.StudyID = plan.study_id
    ds.SeriesNumber = plan.series_number
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = plan.frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = g.size
    ds.PixelSpacing = [_ds(g.pixel_spacing)] * 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    # CT: signed 12-bit with a -1024 intercept (HU -1024..1023); MR: unsigned magnitude.
    ds.PixelRepresentation = 1 if ct else 0
    centres, widths, explanations = anatomy.windows
    ds.WindowCenter, ds.WindowWidth = centres, widths
    ds.WindowCenterWidthExplanation = explanations
    if ct:
        ds.RescaleIntercept = str(anatomy.rescale_intercept)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
    return ds


def _buffer() -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False  # Explicit VR Little Endian
    return fp


class SeriesEncoder:
    """Encodes the slices of one series as ``dcmwrite(..., enforce_file_format=True)`` would.

    Encoding a whole dataset per slice dominated the run time, so the elements shared by the
    series are encoded once (by pydicom's own ``write_dataset``) and only the per-slice
    elements and the File Meta Information are encoded for each file. A dataset is the
    concatenation of its elements in tag order, so the bytes are identical to a full
    ``dcmwrite`` (tested).
    """

    def __init__(self, template: Dataset) -> None:
        self.meta = template.file_meta
        self.parts: list[bytes | int] = []
        run = Dataset()
        for tag in sorted({*template.keys(), *_PER_SLICE}):
            if tag in _PER_SLICE:
                if len(run):
                    self.parts.append(self._encode(run))
                    run = Dataset()
                self.parts.append(tag)
            else:
                run.add(template[tag])
        if len(run):
            self.parts.append(self._encode(run))

    @staticmethod
    def _encode(run: Dataset) -> bytes:
        fp = _buffer()
        write_dataset(fp, run, parent_encoding=CHARSET)
        return fp.getvalue()

    def encode(self, elements: dict[int, DataElement]) -> bytes:
        """One Part 10 file: preamble, ``DICM``, File Meta Information, then the dataset."""
        self.meta.MediaStorageSOPInstanceUID = elements[SOP_INSTANCE_UID].value
        fp = _buffer()
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, self.meta, enforce_standard=True)
        for part in self.parts:
            if isinstance(part, bytes):
                fp.write(part)
            else:
                write_data_element(fp, elements[part], CHARSET)
        return fp.getvalue()


def slice_elements(
    sop_uid: str, instance: int, position: list[str], pixels: bytes
) -> dict[int, DataElement]:
    """The per-slice elements (keyed by tag) that complete a series template."""
    return {
        SOP_INSTANCE_UID: DataElement(SOP_INSTANCE_UID, "UI", sop_uid),
        INSTANCE_NUMBER: DataElement(INSTANCE_NUMBER, "IS", instance),
        IMAGE_POSITION: DataElement(IMAGE_POSITION, "DS", position),
        SLICE_LOCATION: DataElement(SLICE_LOCATION, "DS", position[2]),
        PIXEL_DATA: DataElement(PIXEL_DATA, "OW", pixels),
    }


class ImagingWriter:
    """Streams each imaged patient's studies to DICOM files; holds one series at a time."""

    modality = MODALITY

    def __init__(self, ctx: GenerationContext) -> None:
        self.ctx = ctx
        self.root = ctx.out_dir / MODALITY
        self.counts = {"files": 0, "studies": 0, "dirty": 0}

    def add(self, patient: PatientRecord) -> None:
        plans = plan_studies(self.ctx.seed, patient, self.ctx.image_size)
        if not plans:
            return
        # One stream for every truncation decision of the patient, drawn file by file.
        dirty_rng = stream_rng(self.ctx.seed, patient.index, "imaging:dirty")
        # A near twin shares its source's acquisition noise too (see plan_studies): only its
        # lesion's size and texture, from its own latent factors, tell the two scans apart.
        pixels = patient.index if patient.twin_of is None else patient.twin_of.index
        for plan in plans:
            rng = stream_rng(self.ctx.seed, pixels, f"imaging:pixels:{plan.ordinal}")
            anatomy = ANATOMIES[plan.body_part]
            values, mask = render(anatomy, plan.geometry, plan.habitus, plan.lesion, rng)
            if plan.ordinal == 0:
                self._features(patient, plan, values, mask)
            stored = values - np.int16(anatomy.rescale_intercept)
            stored = stored.astype("<i2" if plan.modality == "CT" else "<u2")
            self._write_series(patient, plan, stored, mask, dirty_rng)
            self.counts["studies"] += 1

    def _features(
        self, patient: PatientRecord, plan: StudyPlan, values: np.ndarray, mask: np.ndarray
    ) -> None:
        """Lesion features as the staging files carry them (real-world values, after noise)."""
        inside = values[mask].astype(np.float64)
        g = plan.geometry
        voxel_ml = g.pixel_spacing**2 * g.slice_spacing / 1000.0
        unit = "hu" if plan.modality == "CT" else "intensity"
        feature = self.ctx.truth.feature
        feature(patient.patient_id, MODALITY, "lesion_diameter_mm", plan.lesion.diameter_mm)
        feature(patient.patient_id, MODALITY, "lesion_volume_ml", mask.sum() * voxel_ml)
        feature(patient.patient_id, MODALITY, f"lesion_mean_{unit}", inside.mean())
        feature(patient.patient_id, MODALITY, f"lesion_{unit}_std", inside.std())
        feature(patient.patient_id, MODALITY, "n_slices", g.n_slices)

    def _write_series(
        self,
        patient: PatientRecord,
        plan: StudyPlan,
        stored: np.ndarray,
        mask: np.ndarray,
        dirty_rng: np.random.Generator,
    ) -> None:
        folder = self.root / plan.accession / str(plan.series_number)
        folder.mkdir(parents=True, exist_ok=True)
        encoder = SeriesEncoder(series_dataset(patient, plan))
        g = plan.geometry
        x0, y0, z0 = g.origin
        for i in range(g.n_slices):
            sop_uid = plan.sop_uid(self.ctx.seed, patient.index, i + 1)
            position = [_ds(x0), _ds(y0), _ds(z0 + i * g.slice_spacing)]
            pixels = stored[i].tobytes()
            data = encoder.encode(slice_elements(sop_uid, i + 1, position, pixels))
            # Always two draws per file, so the stream never depends on the dirty rate.
            corrupt, cut = self.ctx.corrupt(dirty_rng), float(dirty_rng.random())
            path = folder / f"IM{i + 1:06d}.dcm"
            if corrupt and not mask[i].any():
                data = self._truncate(data, len(pixels), cut, path, sop_uid)
            path.write_bytes(data)
            self.counts["files"] += 1

    def _truncate(self, data: bytes, n_pixel: int, cut: float, path: Path, sop_uid: str) -> bytes:
        """Cut strictly inside the Pixel Data value (the last element of the file)."""
        start = len(data) - n_pixel
        keep = start + 1 + int(cut * (n_pixel - 2))
        self.ctx.truth.dirty(
            MODALITY,
            "truncated_dicom",
            self.ctx.relative(path),
            f"SOPInstanceUID={sop_uid}",
            f"file ends after {keep - start} of the {n_pixel} bytes of Pixel Data "
            "(interrupted transfer)",
        )
        self.counts["dirty"] += 1
        return data[:keep]

    def close(self) -> dict[str, int]:
        return dict(self.counts)
