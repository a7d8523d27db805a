"""The ``imaging_features`` bronze schema and how pyradiomics features map to its columns.

One row per DICOM series (Series Instance UID) of ``imaging_instances``, whatever became of it:
``status`` says whether features were computed (``computed``), whether no instance of the
series has pixels to compute from (``no_pixel_data``: RT plans, structure sets, SR, waveforms),
whether none of its pixels decoded (``not_decoded``: a compressed transfer syntax without a
decoder plugin, a damaged file), or whether pyradiomics refused the volume (``failed``);
``status_reason`` says why in a sentence, also for what was left out of a computed series.

Feature columns are doubles named ``<class>_<feature>`` in snake case after pyradiomics'
names (IBSI definitions). Two are derived rather than copied: ``firstorder_std`` is the square
root of pyradiomics' (population) Variance, and volumes are in millilitres. GLCM
``homogeneity`` is pyradiomics' Idm (inverse difference moment, 1 / (1 + (i - j)^2), which is
what scikit-image calls homogeneity) and ``energy`` its JointEnergy (angular second moment).
Every feature pyradiomics computed is in ``features_json`` under its own name.
"""

from __future__ import annotations

import pyarrow as pa

from python_ingest.model import BATCH_ID, INGESTED_AT, RECORD_HASH, SOURCE_FILE, SOURCE_LOCATOR

TABLE = "imaging_features"
COMPUTED, NO_PIXEL_DATA, NOT_DECODED, FAILED = "computed", "no_pixel_data", "not_decoded", "failed"

# column -> (pyradiomics feature, multiplier); firstorder_std is handled apart (sqrt).
FEATURE_COLUMNS: dict[str, tuple[str, float]] = {
    "firstorder_mean": ("firstorder_Mean", 1.0),
    "firstorder_std": ("firstorder_Variance", 1.0),
    "firstorder_median": ("firstorder_Median", 1.0),
    "firstorder_minimum": ("firstorder_Minimum", 1.0),
    "firstorder_maximum": ("firstorder_Maximum", 1.0),
    "firstorder_p10": ("firstorder_10Percentile", 1.0),
    "firstorder_p90": ("firstorder_90Percentile", 1.0),
    "firstorder_skewness": ("firstorder_Skewness", 1.0),
    "firstorder_kurtosis": ("firstorder_Kurtosis", 1.0),
    "firstorder_entropy": ("firstorder_Entropy", 1.0),
    "firstorder_uniformity": ("firstorder_Uniformity", 1.0),
    "shape_voxel_volume_ml": ("shape_VoxelVolume", 1e-3),
    "shape_mesh_volume_ml": ("shape_MeshVolume", 1e-3),
    "shape_surface_area_mm2": ("shape_SurfaceArea", 1.0),
    "shape_sphericity": ("shape_Sphericity", 1.0),
    "shape_max_diameter_mm": ("shape_Maximum3DDiameter", 1.0),
    "shape_max_axial_diameter_mm": ("shape_Maximum2DDiameterSlice", 1.0),
    "shape_major_axis_mm": ("shape_MajorAxisLength", 1.0),
    "shape_elongation": ("shape_Elongation", 1.0),
    "shape_flatness": ("shape_Flatness", 1.0),
    "glcm_contrast": ("glcm_Contrast", 1.0),
    "glcm_homogeneity": ("glcm_Idm", 1.0),
    "glcm_energy": ("glcm_JointEnergy", 1.0),
    "glcm_correlation": ("glcm_Correlation", 1.0),
    "glcm_entropy": ("glcm_JointEntropy", 1.0),
    "glcm_dissimilarity": ("glcm_DifferenceAverage", 1.0),
    "glrlm_short_run_emphasis": ("glrlm_ShortRunEmphasis", 1.0),
    "glrlm_long_run_emphasis": ("glrlm_LongRunEmphasis", 1.0),
    "glrlm_run_percentage": ("glrlm_RunPercentage", 1.0),
    "glrlm_gray_level_nonuniformity_normalized": ("glrlm_GrayLevelNonUniformityNormalized", 1.0),
    "glrlm_run_length_nonuniformity_normalized": ("glrlm_RunLengthNonUniformityNormalized", 1.0),
    "glrlm_run_entropy": ("glrlm_RunEntropy", 1.0),
}

SCHEMA = pa.schema(
    [
        pa.field("series_instance_uid", pa.string(), nullable=False),
        pa.field("study_instance_uid", pa.string()),
        pa.field("patient_id", pa.string()),
        pa.field("accession_number", pa.string()),
        pa.field("modality", pa.string()),
        pa.field("body_part_examined", pa.string()),
        pa.field("study_date", pa.date32()),
        pa.field("n_instances", pa.int32(), nullable=False),  # rows in imaging_instances
        pa.field("n_decoded", pa.int32(), nullable=False),  # instances whose pixels decoded
        pa.field("n_slices", pa.int32()),  # slices of the volume features were computed on
        pa.field("status", pa.string(), nullable=False),
        pa.field("status_reason", pa.string()),
        pa.field("segmentation", pa.string()),  # rule name, or "none": whole volume
        pa.field("voxel_spacing_mm", pa.list_(pa.float64())),  # (slice, row, column)
        pa.field("lesion_voxels", pa.int64()),
        pa.field("lesion_volume_ml", pa.float64()),  # voxels x voxel volume
        pa.field("lesion_diameter_mm", pa.float64()),  # longest axial diameter (RECIST-style)
        *(pa.field(name, pa.float64()) for name in FEATURE_COLUMNS),
        pa.field("features_json", pa.string()),
        pa.field("embedding", pa.list_(pa.float32())),
        pa.field("extractor_name", pa.string(), nullable=False),
        pa.field("extractor_version", pa.string(), nullable=False),
        pa.field("extractor_settings", pa.string(), nullable=False),  # JSON
        pa.field(SOURCE_FILE, pa.string(), nullable=False),  # the folder of the series' files
        pa.field(SOURCE_LOCATOR, pa.string(), nullable=False),  # SeriesInstanceUID=<uid>
        pa.field(BATCH_ID, pa.string(), nullable=False),
        pa.field(INGESTED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(RECORD_HASH, pa.string(), nullable=False),  # sha256 of the instance hashes
    ]
)


def feature_columns(features: dict[str, float | None]) -> dict[str, float | None]:
    """The typed feature columns from pyradiomics' ``class_Feature`` dictionary."""
    row: dict[str, float | None] = {}
    for column, (name, factor) in FEATURE_COLUMNS.items():
        value = features.get(name)
        if value is not None and column == "firstorder_std":
            value = max(value, 0.0) ** 0.5
        row[column] = None if value is None else value * factor
    return row
