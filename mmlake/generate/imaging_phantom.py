"""What the synthetic imaging studies acquire: scanners, protocols, and the pixels of a simple
anatomical phantom with one lesion.

Kept apart from the DICOM writer so that the acquisition and pixel model (what the images
*show*) can be read and tested without the file format. Everything is in patient millimetres
in the DICOM patient coordinate system (LPS: +x towards the patient's left, +y posterior, +z
head-wards), so anatomy and lesion keep their physical size at any ``image_size``.

The anatomy is a cylinder (the same cross-section on every slice): a body or head ellipse,
organs as ellipses at plausible HU / T1 intensities, and one lesion that is an ellipsoid inside
a *host organ* chosen so that it is separable from its surroundings by intensity alone:

* CHEST CT   -> a solid nodule/mass in a lung (-830 HU around it),
* ABDOMEN CT -> a hypo-attenuating liver metastasis (portal-venous liver at ~105 HU),
* BRAIN MR   -> an enhancing mass on post-gadolinium T1 (brighter than grey/white matter).

The lesion carries two latent factors: its longest diameter carries tumour burden ``b`` and the
amplitude of a smoothed random texture inside it carries heterogeneity ``h``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmlake.generate.reference import INSTITUTIONS

# RECIST 1.1: a lesion is measurable from 10 mm on CT, so the staging lesion is never smaller.
MIN_LESION_MM = 10.0
# Smoothing length of the lesion texture (Gaussian sigma, mm): texture features in radiomics
# live at a few-millimetre scale, well above the in-plane pixel size at 256 px.
TEXTURE_SIGMA_MM = 4.0


@dataclass(frozen=True)
class Scanner:
    """One acquisition device as DICOM General Equipment describes it."""

    manufacturer: str
    model: str
    software: str
    station: str
    kernel_or_coil: str  # CT reconstruction kernel / MR receive coil
    field_strength: float = 0.0  # tesla (MR only)


# One CT and one MR per institution (in the order of reference.INSTITUTIONS), so scanner and
# site co-vary as they do in real archives.
_SCANNER_SETS: tuple[dict[str, Scanner], ...] = (
    {
        "CT": Scanner("SIEMENS", "SOMATOM Definition AS+", "syngo CT VA48A", "RCCCT01", "I30f"),
        "MR": Scanner("SIEMENS", "MAGNETOM Skyra", "syngo MR E11", "RCCMR01", "Head_32", 3.0),
    },
    {
        "CT": Scanner("GE MEDICAL SYSTEMS", "Revolution CT", "revo_v1.1", "SMUHCT2", "STANDARD"),
        "MR": Scanner("GE MEDICAL SYSTEMS", "SIGNA Artist", "MR29.1", "SMUHMR1", "HNS Head", 1.5),
    },
    {
        "CT": Scanner("Philips", "Ingenuity CT", "4.1.6", "LOICT1", "B"),
        "MR": Scanner("Philips", "Ingenia", "5.7.1", "LOIMR1", "dS Head 32ch", 3.0),
    },
)


def scanner_for(institution: str, modality: str) -> Scanner:
    """The CT or MR scanner of an institution (sites beyond the table reuse it cyclically)."""
    return _SCANNER_SETS[INSTITUTIONS.index(institution) % len(_SCANNER_SETS)][modality]


@dataclass(frozen=True)
class Host:
    """The organ a lesion sits in, as an ellipse in the unscaled phantom (mm)."""

    center: tuple[float, float]
    semi_axes: tuple[float, float]
    margin: float  # mm of organ kept around the lesion, so it stays enclosed by the organ


@dataclass(frozen=True)
class Anatomy:
    """Acquisition protocol and phantom of one body part (one protocol per body part)."""

    body_part: str
    body_width_mm: float  # widest extent of the phantom at habitus 1 (left-right)
    fov_margin_mm: tuple[float, float]  # field of view = body width + this (uniform range)
    slice_thickness: float
    slice_spacing: float  # distance between slice centres (> thickness: an MR slice gap)
    hosts: tuple[Host, ...]  # where the lesion can be (e.g. right or left lung)
    noise_sd: float  # CT quantum noise (HU) or MR thermal noise (a.u.)
    rician: bool  # MR magnitude images have Rician, not Gaussian, noise
    lesion_mean: tuple[float, float]  # uniform range of the lesion's mean value
    texture_base: float  # texture SD at h = 0; scales with exp(0.45 h)
    value_range: tuple[int, int]  # representable real-world values (HU or a.u.)
    rescale_intercept: int  # stored value = real value - intercept
    draw: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x, y) mm grids -> cross-section
    descriptions: tuple[str, str]  # StudyDescription, SeriesDescription as the RIS names them
    # Display windows (centres, widths, explanations): e.g. mediastinal + lung for a chest.
    windows: tuple[list[str], list[str], list[str]]
    acquisition: dict[str, object]  # protocol attributes by DICOM keyword (contrast, sequence)


def _ell(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0


def _chest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Axial chest at the level of the heart, contrast-enhanced (values in HU)."""
    img = np.full(np.broadcast_shapes(x.shape, y.shape), -1000.0, dtype=np.float32)
    img[_ell(x, y, 0, 0, 165, 115)] = -100  # subcutaneous fat
    img[_ell(x, y, 0, 0, 153, 103)] = 40  # chest wall muscle
    # Ribs: interrupted bone arcs rather than a closed ring, as an axial slice cuts them.
    ring = _ell(x, y, 0, 0, 147, 97) & ~_ell(x, y, 0, 0, 141, 91)
    img[ring & (np.cos(12 * np.arctan2(y, x)) > -0.2)] = 700
    img[_ell(x, y, 0, 0, 141, 91)] = 35  # mediastinal soft tissue
    img[_ell(x, y, -75, -5, 50, 80) | _ell(x, y, 75, -5, 50, 80)] = -830  # aerated lungs
    img[_ell(x, y, 0, -20, 24, 45)] = 45  # heart
    img[_ell(x, y, 12, 35, 11, 11)] = 180  # descending aorta, contrast-filled
    img[_ell(x, y, 0, 80, 17, 17)] = 700  # vertebral cortex
    img[_ell(x, y, 0, 80, 14, 14)] = 250  # cancellous bone
    return img


def _abdomen(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Axial upper abdomen at the liver hilum, portal-venous phase (values in HU)."""
    img = np.full(np.broadcast_shapes(x.shape, y.shape), -1000.0, dtype=np.float32)
    img[_ell(x, y, 0, 0, 160, 115)] = -100  # subcutaneous fat
    img[_ell(x, y, 0, 0, 148, 103)] = 50  # abdominal wall muscle
    img[_ell(x, y, 0, 0, 140, 95)] = -60  # visceral fat and mesentery
    img[_ell(x, y, -30, 85, 16, 14) | _ell(x, y, 30, 85, 16, 14)] = 50  # paraspinal muscles
    img[_ell(x, y, 0, 80, 17, 17)] = 700
    img[_ell(x, y, 0, 80, 14, 14)] = 250
    img[_ell(x, y, 12, 55, 10, 10)] = 170  # aorta
    img[_ell(x, y, -18, 50, 11, 11)] = 130  # inferior vena cava
    img[_ell(x, y, -60, 72, 20, 22) | _ell(x, y, 60, 72, 20, 22)] = 160  # kidneys (cortex)
    img[_ell(x, y, 75, 15, 25, 40)] = 115  # spleen
    for cx, cy, r in ((40, -50, 10), (70, -30, 7), (10, -70, 8)):  # bowel loops with gas
        img[_ell(x, y, cx, cy, r + 3, r + 3)] = 30
        img[_ell(x, y, cx, cy, r, r)] = -950
    img[_ell(x, y, -55, -15, 70, 62)] = 105  # liver, drawn last: the lesion's host
    return img


def _brain(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Axial brain at the lateral ventricles, T1 after gadolinium (arbitrary MR units)."""
    img = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    img[_ell(x, y, 0, 0, 72, 92)] = 750  # scalp fat: bright on T1
    img[_ell(x, y, 0, 0, 66, 86)] = 80  # skull: no signal from cortical bone
    img[_ell(x, y, 0, 0, 60, 80)] = 150  # cerebrospinal fluid: dark on T1
    img[_ell(x, y, 0, 0, 57, 77)] = 520  # grey matter
    img[_ell(x, y, 0, 0, 48, 68)] = 680  # white matter: brighter than grey on T1
    img[_ell(x, y, -9, -5, 6, 24) | _ell(x, y, 9, -5, 6, 24)] = 150  # lateral ventricles
    return img


# Portal-venous / arterial CT with iodinated contrast at 120 kVp.
_CT_PROTOCOL: dict[str, object] = {
    "ContrastBolusAgent": "IOHEXOL 350 MG/ML",
    "ContrastBolusRoute": "IV",
    "KVP": "120",
    "DataCollectionDiameter": "500",
    "GantryDetectorTilt": "0",
}
# A 2D spin-echo T1 after gadolinium: the routine sequence that shows the enhancing mass.
_MR_T1_POST_GD: dict[str, object] = {
    "ContrastBolusAgent": "GADOBUTROL 1 MMOL/ML",
    "ContrastBolusRoute": "IV",
    "ScanningSequence": "SE",
    "SequenceVariant": ["SK", "SP"],
    "ScanOptions": "",
    "MRAcquisitionType": "2D",
    "SequenceName": "se2d1",
    "RepetitionTime": "550",
    "EchoTime": "9.8",
    "EchoTrainLength": 1,
    "NumberOfAverages": "1",
    "ImagedNucleus": "1H",
    "FlipAngle": "90",
}

ANATOMIES: dict[str, Anatomy] = {
    "CHEST": Anatomy(
        body_part="CHEST",
        body_width_mm=330.0,
        fov_margin_mm=(15.0, 45.0),
        slice_thickness=5.0,
        slice_spacing=5.0,
        hosts=(Host((-75.0, -5.0), (50.0, 80.0), 6.0), Host((75.0, -5.0), (50.0, 80.0), 6.0)),
        noise_sd=10.0,
        rician=False,
        lesion_mean=(35.0, 60.0),
        texture_base=14.0,
        value_range=(-1024, 1023),  # 12-bit signed stored values after the -1024 intercept
        rescale_intercept=-1024,
        draw=_chest,
        descriptions=("CT CHEST W CONTRAST", "AXIAL 5MM SOFT TISSUE"),
        windows=(["40", "-600"], ["400", "1500"], ["MEDIASTINUM", "LUNG"]),
        acquisition=_CT_PROTOCOL,
    ),
    "ABDOMEN": Anatomy(
        body_part="ABDOMEN",
        body_width_mm=320.0,
        fov_margin_mm=(15.0, 45.0),
        slice_thickness=5.0,
        slice_spacing=5.0,
        hosts=(Host((-55.0, -15.0), (70.0, 62.0), 8.0),),
        noise_sd=8.0,
        rician=False,
        lesion_mean=(35.0, 60.0),
        texture_base=14.0,
        value_range=(-1024, 1023),
        rescale_intercept=-1024,
        draw=_abdomen,
        descriptions=("CT ABDOMEN PELVIS W CONTRAST", "AXIAL 5MM PORTAL VENOUS"),
        windows=(["50", "60"], ["350", "160"], ["ABDOMEN", "LIVER"]),
        acquisition=_CT_PROTOCOL,
    ),
    "BRAIN": Anatomy(
        body_part="BRAIN",
        body_width_mm=144.0,
        fov_margin_mm=(70.0, 100.0),  # a 220-250 mm head field of view
        slice_thickness=5.0,
        slice_spacing=6.0,  # 5 mm slices with a 1 mm gap, as routine 2D brain MR
        hosts=(Host((0.0, 0.0), (57.0, 77.0), 5.0),),
        noise_sd=15.0,
        rician=True,
        lesion_mean=(1100.0, 1300.0),
        texture_base=35.0,
        value_range=(0, 4095),  # 12-bit unsigned, as MR scanners store magnitude images
        rescale_intercept=0,
        draw=_brain,
        descriptions=("MRI BRAIN W WO CONTRAST", "AX T1 SE POST GAD"),
        windows=(["650"], ["1300"], ["T1"]),
        acquisition=_MR_T1_POST_GD,
    ),
}


@dataclass(frozen=True)
class Geometry:
    """The sampling grid of one axial series (HFS, ImageOrientationPatient 1\\0\\0\\0\\1\\0)."""

    size: int  # rows = columns
    pixel_spacing: float  # mm
    n_slices: int
    slice_spacing: float  # mm between slice centres, z increasing with InstanceNumber
    origin: tuple[float, float, float]  # centre of the first pixel of the first slice (IPP)

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (columns), y (rows) and z (slices) centre coordinates in mm."""
        idx = np.arange(self.size, dtype=np.float64)
        x = self.origin[0] + idx * self.pixel_spacing
        y = self.origin[1] + idx * self.pixel_spacing
        z = self.origin[2] + np.arange(self.n_slices) * self.slice_spacing
        return x, y, z


def make_geometry(
    anatomy: Anatomy, size: int, habitus: float, rng: np.random.Generator
) -> Geometry:
    """Field of view fitted to the patient, as the technologist sets the display FOV.

    The pixel spacing follows from it and ``size`` (about 5.5 mm at 64 px for a body, 3.7 mm
    for a head), so the physical anatomy and lesion sizes never depend on the matrix size.
    """
    fov = anatomy.body_width_mm * habitus + float(rng.uniform(*anatomy.fov_margin_mm))
    spacing = round(fov / size, 6)
    n_slices = int(rng.integers(16, 33))
    half = (size - 1) / 2 * spacing
    # Table position: an arbitrary scanner z origin, as on real exams.
    z0 = round(float(rng.uniform(-250.0, -50.0)), 1)
    return Geometry(size, spacing, n_slices, anatomy.slice_spacing, (-half, -half, z0))


@dataclass(frozen=True)
class Lesion:
    """One ellipsoidal lesion; its long axis lies in the axial plane (as RECIST measures it)."""

    diameter_mm: float  # longest diameter = 2 * semi_axes[0]
    semi_axes: tuple[float, float, float]  # mm: in-plane long, in-plane short, cranio-caudal
    angle: float  # in-plane rotation of the long axis (radians)
    center: tuple[float, float, float]  # mm, on a voxel centre so it is always sampled
    host: Host  # in the unscaled phantom; the mask never leaves this organ
    mean: float  # mean value before texture and noise (HU or a.u.)
    texture_sd: float  # amplitude of the texture field (HU or a.u.)


def lesion_diameter(burden: float, rng: np.random.Generator) -> float:
    """The documented size model: 22 mm * exp(0.35 b), with 10% log-normal scatter."""
    return 22.0 * math.exp(0.35 * burden) * math.exp(float(rng.normal(0.0, 0.1)))


def place_lesion(
    anatomy: Anatomy,
    geometry: Geometry,
    habitus: float,
    diameter: float,
    heterogeneity: float,
    host: Host,
    rng: np.random.Generator,
) -> Lesion:
    """Fit a lesion of ``diameter`` (clipped to its organ and the slab) inside ``host``."""
    cx, cy = host.center[0] * habitus, host.center[1] * habitus
    ax, ay = host.semi_axes[0] * habitus, host.semi_axes[1] * habitus
    coverage = (geometry.n_slices - 1) * geometry.slice_spacing
    ratio_short, ratio_cc = rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0)
    # The organ must enclose the lesion with a margin, and the slab must cover it whole.
    max_semi = min(ax, ay) - host.margin - geometry.pixel_spacing
    a = float(np.clip(diameter / 2, MIN_LESION_MM / 2, max_semi))
    c = min(a * ratio_cc, coverage / 2 - geometry.slice_spacing)
    room_x, room_y = (ax - a - host.margin) * 0.8, (ay - a - host.margin) * 0.8
    r, phi = math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    x0, y0, z0 = geometry.origin
    px, sz = geometry.pixel_spacing, geometry.slice_spacing
    room_z = coverage / 2 - c
    dz = rng.uniform(-room_z, room_z)

    def snap(value: float, origin: float, step: float) -> float:
        return origin + round((value - origin) / step) * step

    center = (
        snap(cx + r * math.cos(phi) * room_x, x0, px),
        snap(cy + r * math.sin(phi) * room_y, y0, px),
        snap(z0 + coverage / 2 + dz, z0, sz),
    )
    return Lesion(
        diameter_mm=2 * a,
        semi_axes=(a, a * ratio_short, c),
        angle=float(rng.uniform(0, math.pi)),
        center=center,
        mean=float(rng.uniform(*anatomy.lesion_mean)),
        texture_sd=anatomy.texture_base * math.exp(0.45 * heterogeneity),
        host=host,
    )


def _smooth(field: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
    """Separable Gaussian blur by small dense matrices (lesion boxes are tiny; numpy only).

    Rows of each matrix are renormalised so the edges are not darkened. scipy is only a dev
    dependency (via scikit-learn), so the generator does not rely on ``scipy.ndimage``.
    """
    for axis, sigma in enumerate(sigmas):
        n = field.shape[axis]
        d = np.arange(n)[:, None] - np.arange(n)[None, :]
        kernel = np.exp(-0.5 * (d / max(sigma, 1e-3)) ** 2)
        kernel /= kernel.sum(axis=1, keepdims=True)
        field = np.moveaxis(np.tensordot(kernel, field, axes=([1], [axis])), 0, axis)
    return field


def render(
    anatomy: Anatomy,
    geometry: Geometry,
    habitus: float,
    lesion: Lesion,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Real-world values (HU or a.u.) as integers, shape (slices, rows, cols), and lesion mask."""
    x, y, z = geometry.axes()
    section = anatomy.draw(x[None, :] / habitus, y[:, None] / habitus)
    volume = np.broadcast_to(section, (geometry.n_slices, *section.shape)).copy()

    # Lesion mask: voxel centres inside the rotated ellipsoid, restricted to its host organ.
    cos, sin = math.cos(lesion.angle), math.sin(lesion.angle)
    dx, dy = x[None, :] - lesion.center[0], y[:, None] - lesion.center[1]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    a, b, c = lesion.semi_axes
    radial = (u / a) ** 2 + (v / b) ** 2
    dz = (z - lesion.center[2])[:, None, None]
    mask = radial[None, :, :] + (dz / c) ** 2 <= 1.0

    host = lesion.host
    in_host = _ell(x[None, :] / habitus, y[:, None] / habitus, *host.center, *host.semi_axes)
    mask &= in_host[None, :, :]

    zs, ys, xs = np.nonzero(mask)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in (zs, ys, xs))
    inner = mask[box]
    px = geometry.pixel_spacing
    sigmas = (
        TEXTURE_SIGMA_MM / geometry.slice_spacing,
        TEXTURE_SIGMA_MM / px,
        TEXTURE_SIGMA_MM / px,
    )
    texture = _smooth(rng.standard_normal(inner.shape), sigmas)
    values = texture[inner]
    # Standardise inside the lesion so its SD is exactly texture_sd before noise: the planted
    # heterogeneity, independent of the lesion's size and of the sampling.
    spread = values.std()
    values = (values - values.mean()) / (spread if spread > 0 else 1.0)
    region = volume[box]
    region[inner] = lesion.mean + lesion.texture_sd * values

    sd = np.float32(anatomy.noise_sd)
    if anatomy.rician:
        # Magnitude of complex Gaussian noise: Rayleigh in air, near-Gaussian in tissue.
        real = volume + rng.standard_normal(volume.shape, dtype=np.float32) * sd
        imag = rng.standard_normal(volume.shape, dtype=np.float32) * sd
        volume = np.sqrt(real * real + imag * imag)
    else:
        volume += rng.standard_normal(volume.shape, dtype=np.float32) * sd
    lo, hi = anatomy.value_range
    return np.clip(np.rint(volume), lo, hi).astype(np.int16), mask
