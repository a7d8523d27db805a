"""Radiomics features of a region with pyradiomics, and a fixed-length embedding of them.

pyradiomics (the IBSI-aligned reference implementation the field publishes with) computes
first-order, shape (3-D mesh), GLCM and GLRLM features on the original image, without
resampling or filters. Discretisation follows IBSI practice: a fixed bin width of 25 HU on CT,
where the values have a physical unit, and a fixed bin count of 32 elsewhere (MR, NM, US...),
where they don't. The settings are recorded with every row (``extractor_settings``).

The embedding (``EMBEDDING_DIM`` = 64, float32, L2 norm 1) is for similarity search between
lesions. Each of ``_DESCRIPTORS`` (size, shape, intensity spread, texture: features that mean
the same across series) is mapped to (-1, 1) as tanh((t(x) - centre) / scale), where t is a log
for scale-like features and the centre and scale are fixed, documented reference values (a
typical solid lesion maps near 0; the clinical range spans about +-1), never fitted to a batch,
so an embedding never changes when other series arrive. A missing feature (no lesion: no shape
or texture) maps to 0. The vector is then multiplied by a fixed +-1/8 matrix (a Rademacher
random projection whose signs come from SHA-256, stable across library versions) and
L2-normalised, so cosine similarity compares lesion profiles. Lesion and whole-volume rows
share one space but are only meaningfully compared with their own kind.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np

EXTRACTOR_NAME = "pyradiomics"
EMBEDDING_DIM = 64
EMBEDDING_VERSION = "tanh-rademacher-64/v1"
CT_BIN_WIDTH = 25.0
BIN_COUNT = 32
LESION_CLASSES = ("firstorder", "shape", "glcm", "glrlm")

# (pyradiomics feature, transform, centre, scale): the embedding's descriptors, in order.
_DESCRIPTORS: tuple[tuple[str, str, float, float], ...] = (
    ("shape_VoxelVolume", "log", math.log(10_000.0), 1.5),  # mm3: 10 ml
    ("shape_Maximum3DDiameter", "log", math.log(35.0), 0.5),  # mm
    ("shape_Sphericity", "lin", 0.7, 0.15),
    ("shape_Elongation", "lin", 0.7, 0.2),
    ("shape_Flatness", "lin", 0.6, 0.2),
    ("shape_SurfaceVolumeRatio", "log", math.log(0.3), 0.5),  # 1/mm
    ("firstorder_Variance", "halflog", math.log(30.0), 0.7),  # log SD
    ("firstorder_Skewness", "lin", 0.0, 1.0),
    ("firstorder_Kurtosis", "log", math.log(3.0), 0.5),
    ("firstorder_Entropy", "lin", 3.0, 1.5),  # bits
    ("firstorder_Uniformity", "lin", 0.2, 0.15),
    ("firstorder_RobustMeanAbsoluteDeviation", "log", math.log(15.0), 0.8),
    ("glcm_Contrast", "log1p", 1.0, 1.0),
    ("glcm_Idm", "lin", 0.5, 0.2),
    ("glcm_JointEnergy", "log", math.log(0.05), 1.5),
    ("glcm_Correlation", "lin", 0.3, 0.3),
    ("glcm_JointEntropy", "lin", 5.0, 2.0),
    ("glcm_Imc1", "lin", -0.1, 0.1),
    ("glcm_Imc2", "lin", 0.5, 0.3),
    ("glrlm_ShortRunEmphasis", "lin", 0.8, 0.1),
    ("glrlm_LongRunEmphasis", "log", math.log(2.0), 0.7),
    ("glrlm_RunPercentage", "lin", 0.8, 0.15),
    ("glrlm_GrayLevelNonUniformityNormalized", "lin", 0.2, 0.15),
    ("glrlm_RunLengthNonUniformityNormalized", "lin", 0.6, 0.2),
    ("glrlm_RunEntropy", "lin", 4.0, 1.5),
)
_PROJECTION_SEED = "mmlake/imaging_features/embedding/v1"


@cache
def extractor_version() -> str:
    return metadata.version("pyradiomics")


def settings_for(modality: str | None) -> dict[str, Any]:
    """pyradiomics settings: fixed bin width in HU on CT, fixed bin count otherwise."""
    discretisation = {"binWidth": CT_BIN_WIDTH} if modality == "CT" else {"binCount": BIN_COUNT}
    # A lesion a few voxels long (10 mm on 5 mm voxels) still gets its features: pyradiomics
    # would otherwise require a region extending in at least two dimensions.
    return {"label": 1, "additionalInfo": False, "minimumROIDimensions": 1, **discretisation}


@cache
def _extractor(modality_is_ct: bool, classes: tuple[str, ...]) -> Any:
    from radiomics import featureextractor  # heavy import: only in the workers that compute

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(
        **settings_for("CT" if modality_is_ct else None)
    )
    extractor.disableAllFeatures()
    for name in classes:
        extractor.enableFeatureClassByName(name)
    return extractor


def extract(
    values: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    modality: str | None,
    classes: tuple[str, ...],
) -> dict[str, float | None]:
    """pyradiomics features of ``mask`` over ``values`` (z, y, x), as ``class_Feature``.

    NaN voxels (slices not decoded) must be outside ``mask``; they are set to the region's
    minimum first, so that discretisation never sees a NaN. Raises what pyradiomics raises
    (e.g. a region too small for a 3-D shape).
    """
    import SimpleITK as sitk  # noqa: N813 - the library's own spelling

    # Only the region's bounding box matters to features of the original image (texture
    # matrices pair voxels that are both inside the region); cropping first spares
    # pyradiomics its own whole-image checks.
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    values, mask = values[box], mask[box]
    image_values = np.where(np.isnan(values), float(values[mask].min()), values)
    # pyradiomics wants background in every mask: a one-voxel frame of it around the box
    # (outside the region, so no feature sees it) also lets a whole-volume mask through.
    image = sitk.GetImageFromArray(np.pad(image_values.astype(np.float32), 1, mode="edge"))
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))  # x, y, z
    label = sitk.GetImageFromArray(np.pad(mask.astype(np.uint8), 1))
    label.CopyInformation(image)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Small regions leave some features undefined (empty percentile bands, zero variance):
        # pyradiomics then warns and returns NaN, which lands as null.
        warnings.simplefilter("ignore")
        result = _extractor(modality == "CT", classes).execute(image, label)
    features: dict[str, float | None] = {}
    for key, value in result.items():
        if key.startswith("original_"):
            features[key.removeprefix("original_")] = _real(value)
    return features


def _real(value: Any) -> float | None:
    """A finite real number, else None. Elongation and Flatness are square roots of
    eigenvalue ratios, complex when round-off makes a flat region's eigenvalue negative."""
    number = complex(value)
    if number.imag != 0 or not math.isfinite(number.real):
        return None
    return number.real


def single_voxel_features(value: float, voxel_volume_mm3: float) -> dict[str, float | None]:
    """First-order features of a one-voxel region, which pyradiomics refuses to process.

    At 5 mm voxels a 10 mm nodule (the RECIST minimum) can be one voxel; its mean, extremes
    and percentiles are its value and its spread is 0, as IBSI defines them for any region
    (skewness and kurtosis are 0 for zero variance, as pyradiomics reports them). Shape
    beyond the voxel volume and texture are undefined and left out.
    """
    constant = ("Mean", "Median", "Minimum", "Maximum", "10Percentile", "90Percentile")
    zero = (
        "Variance", "Range", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation",
        "InterquartileRange", "Entropy", "Skewness", "Kurtosis",
    )  # fmt: skip
    features: dict[str, float | None] = {f"firstorder_{name}": value for name in constant}
    features |= {f"firstorder_{name}": 0.0 for name in zero}
    features |= {
        "firstorder_Uniformity": 1.0,
        "firstorder_RootMeanSquared": abs(value),
        "firstorder_Energy": value * value,
        "firstorder_TotalEnergy": value * value * voxel_volume_mm3,
        "shape_VoxelVolume": voxel_volume_mm3,
    }
    return features


def _descriptor(value: float | None, transform: str, centre: float, scale: float) -> float:
    if value is None:
        return 0.0
    if transform in ("log", "halflog"):
        if value <= 0:
            return -1.0
        x = math.log(value) * (0.5 if transform == "halflog" else 1.0)
    elif transform == "log1p":
        x = math.log1p(max(value, 0.0))
    else:
        x = value
    return math.tanh((x - centre) / scale)


@cache
def _projection() -> np.ndarray:
    """A fixed (EMBEDDING_DIM x descriptors) matrix of +-1/sqrt(EMBEDDING_DIM) from SHA-256."""
    n = EMBEDDING_DIM * len(_DESCRIPTORS)
    stream = b"".join(
        hashlib.sha256(f"{_PROJECTION_SEED}/{block}".encode()).digest()
        for block in range(math.ceil(n / 256))
    )
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))[:n]
    signs = bits.astype(np.float64) * 2.0 - 1.0
    return signs.reshape(EMBEDDING_DIM, len(_DESCRIPTORS)) / math.sqrt(EMBEDDING_DIM)


def embedding(features: dict[str, float | None]) -> list[float] | None:
    """The L2-normalised 64-d embedding, or None when no descriptor could be computed."""
    vector = np.array([_descriptor(features.get(name), *rest) for name, *rest in _DESCRIPTORS])
    if not np.any(vector):
        return None
    projected = _projection() @ vector
    norm = float(np.linalg.norm(projected))
    if norm == 0.0:
        return None
    return (projected / norm).astype(np.float32).tolist()


def embedding_settings() -> dict[str, Any]:
    return {
        "embedding": EMBEDDING_VERSION,
        "embedding_dim": EMBEDDING_DIM,
        "descriptors": [name for name, *_ in _DESCRIPTORS],
    }
