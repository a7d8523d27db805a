"""Imaging features: one row per series, lesion features that recover the generator's truth,
idempotent re-runs, and pydicom's real files described (or accounted for) without a crash.

The generator plants one lesion per series and writes its diameter, volume and intensity SD
to ``_truth/features.csv`` for the staging series; the segmentation rules must find it from the
pixels alone. The real files exercise every transfer syntax, multi-frame RT Dose, colour
secondary captures, mixed-orientation localizers and duplicated instances.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pydicom
import pytest

from mmlake.duckdb_ext import connect
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest import imaging_features as features_module
from python_ingest.imaging import ImagingReader
from python_ingest.imaging_features import (
    TABLE,
    FeatureSummary,
    compute_imaging_features,
    series_features,
)
from python_ingest.imaging_radiomics import EMBEDDING_DIM, embedding
from python_ingest.imaging_segment import rule_for
from python_ingest.imaging_volume import load_volume
from python_ingest.job import IngestJob
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "dicom"
needs_realdata = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real DICOM files not found at {REALDATA} (CI has them)"
)
STATUSES = {"computed", "no_pixel_data", "not_decoded", "failed"}
Duck = duckdb.DuckDBPyConnection


@pytest.fixture(scope="module")
def duck() -> Iterator[Duck]:
    """One DuckDB connection with the Delta extension for the module (loading it is slow)."""
    with connect() as conn:
        yield conn


def _rows(duck: Duck, bronze: Path, sql: str, table: str = TABLE) -> list[dict[str, Any]]:
    """``sql`` with ``{t}`` standing for the bronze table, as dicts."""
    cursor = duck.execute(sql.format(t=f"delta_scan('{bronze / table}')"))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort")
    config = GenerationConfig(
        patients=40, seed=31, dirty_rate=0.05, image_size=64, modalities=("ehr", "imaging")
    )
    generate_cohort(config, out)
    return out


@pytest.fixture(scope="module")
def computed(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FeatureSummary]:
    lakehouse = tmp_path_factory.mktemp("lakehouse")
    IngestJob(ImagingReader(), lakehouse).run(cohort / "imaging")
    return lakehouse / "bronze", compute_imaging_features(lakehouse)


def test_one_row_per_series_with_extractor_embedding_and_lineage(
    duck: Duck,
    computed: tuple[Path, FeatureSummary],
) -> None:
    bronze, summary = computed
    instances = _rows(
        duck,
        bronze,
        "select series_instance_uid as uid, count(*) as n, list(_record_hash) as hashes, "
        "min(instance_number) as first, max(instance_number) as last from {t} group by 1",
        "imaging_instances",
    )
    rows = {r["series_instance_uid"]: r for r in _rows(duck, bronze, "select * from {t}")}
    assert len(rows) == len(instances) == summary.series_seen == summary.series_computed
    assert summary.by_status == {"computed": len(instances)}
    version = metadata.version("pyradiomics")
    for series in instances:
        row = rows[series["uid"]]
        assert row["n_instances"] == row["n_decoded"] == series["n"]
        # A quarantined (cut) slice inside the stack is left empty, not closed up.
        assert row["n_slices"] == series["last"] - series["first"] + 1
        assert row["status"] == "computed"
        assert row["segmentation"] == rule_for(row["modality"], row["body_part_examined"])
        assert row["extractor_name"] == "pyradiomics" and row["extractor_version"] == version
        settings = json.loads(row["extractor_settings"])
        assert settings["binWidth" if row["modality"] == "CT" else "binCount"] > 0
        vector = np.asarray(row["embedding"], dtype=np.float64)
        assert vector.shape == (EMBEDDING_DIM,) and math.isclose(
            float(np.linalg.norm(vector)), 1.0, abs_tol=1e-5
        )
        assert row["_source_locator"] == f"SeriesInstanceUID={series['uid']}"
        expected = hashlib.sha256("\n".join(sorted(series["hashes"])).encode()).hexdigest()
        assert row["_record_hash"] == expected
        assert Path(row["_source_file"]).is_dir() and row["_ingest_batch_id"]
        features = json.loads(row["features_json"])
        assert math.isclose(features["firstorder_Mean"], row["firstorder_mean"])
        assert row["firstorder_std"] is not None and row["lesion_voxels"] >= 1
        if row["lesion_voxels"] == 1:  # a 10 mm nodule on 5 mm voxels: no shape, no texture
            assert row["firstorder_std"] == 0 and row["glcm_contrast"] is None
            continue
        assert {"shape_Sphericity", "glcm_Contrast", "glrlm_RunPercentage"} <= features.keys()
        for column in ("shape_sphericity", "glcm_contrast", "glcm_energy", "glrlm_run_entropy"):
            assert row[column] is not None and math.isfinite(row[column]), column


def _truth(cohort: Path) -> pd.DataFrame:
    """The staging lesion's truth per MRN (one SD column, HU on CT and a.u. on MR)."""
    patients = pd.read_csv(cohort / "_truth" / "patients.csv").set_index("patient_id")
    features = pd.read_csv(cohort / "_truth" / "features.csv")
    features = features[features["modality"] == "imaging"].copy()
    features["feature"] = features["feature"].replace({"lesion_intensity_std": "lesion_hu_std"})
    truth = features.pivot(index="patient_id", columns="feature", values="value")
    return truth.join(patients["mrn"]).set_index("mrn")


def test_lesion_features_recover_the_planted_lesion(
    duck: Duck, cohort: Path, computed: tuple[Path, FeatureSummary]
) -> None:
    bronze, _ = computed
    staging = pd.DataFrame(
        _rows(
            duck,
            bronze,
            "select patient_id, body_part_examined, segmentation, lesion_diameter_mm, "
            "lesion_volume_ml, "
            "firstorder_std from {t} qualify row_number() over "
            "(partition by patient_id order by study_date) = 1",
        )
    ).set_index("patient_id")
    truth = _truth(cohort)
    assert set(staging.index) == set(truth.index) and len(truth) >= 20
    joined = truth.join(staging, rsuffix="_measured")
    assert (joined["segmentation"] != "none").all()

    def rho(a: str, b: str) -> float:
        return float(joined[a].corr(joined[b], method="spearman"))

    assert rho("lesion_diameter_mm", "lesion_diameter_mm_measured") > 0.8
    assert rho("lesion_hu_std", "firstorder_std") > 0.7
    assert rho("lesion_volume_ml", "lesion_volume_ml_measured") > 0.9
    # A lung nodule or an enhancing brain mass is recovered voxel for voxel (truth is rounded
    # to 6 significant digits); a liver metastasis closely (its texture can reach liver HU).
    exact = joined[joined["body_part_examined"].isin(["CHEST", "BRAIN"])]
    assert len(exact) >= 10
    assert np.allclose(exact["lesion_volume_ml_measured"], exact["lesion_volume_ml"], rtol=1e-4)
    assert np.allclose(exact["firstorder_std"], exact["lesion_hu_std"], rtol=1e-4, atol=1e-4)


def _snapshot(duck: Duck, bronze: Path) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(r.values())
        for r in _rows(
            duck, bronze, "select series_instance_uid, _record_hash, _ingest_batch_id from {t}"
        )
    )


def test_rerun_computes_nothing(duck: Duck, computed: tuple[Path, FeatureSummary]) -> None:
    bronze, first = computed
    before = _snapshot(duck, bronze)
    for _ in range(2):
        summary = compute_imaging_features(bronze.parent)
        assert summary.series_skipped == summary.series_seen == first.series_seen
        assert summary.series_computed == summary.series_removed == 0
        assert _snapshot(duck, bronze) == before


def test_a_changed_series_is_recomputed_in_place(duck: Duck, cohort: Path, tmp_path: Path) -> None:
    """Two series copied; one slice rewritten: that series alone gets a new row, once."""
    folders = sorted({p.parent for p in (cohort / "imaging").rglob("*.dcm")})[:2]
    source = tmp_path / "imaging"
    for folder in folders:
        shutil.copytree(folder, source / folder.parent.name / folder.name)
    lakehouse = tmp_path / "lakehouse"
    IngestJob(ImagingReader(), lakehouse).run(source)
    assert compute_imaging_features(lakehouse).series_computed == 2
    bronze = lakehouse / "bronze"
    before = {uid: digest for uid, digest, _ in _snapshot(duck, bronze)}
    target = sorted((source / folders[0].parent.name / folders[0].name).glob("*.dcm"))[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(target)
        changed = ds.SeriesInstanceUID
        pixels = ds.pixel_array.copy()
        pixels[:8, :8] = pixels.max()  # a burnt-in annotation, say
        ds.PixelData = pixels.tobytes()
        ds.save_as(target)
    IngestJob(ImagingReader(), lakehouse).run(source)
    summary = compute_imaging_features(lakehouse)
    assert (summary.series_computed, summary.series_skipped) == (1, 1)
    after = {uid: digest for uid, digest, _ in _snapshot(duck, bronze)}
    assert len(_snapshot(duck, bronze)) == 2 and after.keys() == before.keys()
    assert [uid for uid in after if after[uid] != before[uid]] == [changed]


def test_series_features_takes_files_in_any_order(cohort: Path) -> None:
    """The per-series function on its own: the volume is ordered by position, not by name."""
    folder = sorted({p.parent for p in (cohort / "imaging").rglob("*.dcm")})[0]
    files = sorted(folder.glob("*.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    args = (ds.Modality, ds.BodyPartExamined)
    forward = series_features(files, *args)
    backward = series_features(files[::-1], *args)
    assert forward == backward and forward["status"] == "computed"
    assert forward["embedding"] == embedding(json.loads(forward["features_json"]))


def test_native_slices_read_from_bronze_equal_pydicoms_decoding(
    computed: tuple[Path, FeatureSummary],
) -> None:
    """The fast path (one read at ``pixel_data_offset``) gives pydicom's values exactly."""
    bronze, _ = computed
    rows, _ = features_module._read(bronze.parent)
    tasks = features_module._tasks(rows, None)
    assert all(layout is not None for task in tasks for layout in task.layouts)
    for task in tasks[:6]:
        paths = [Path(p) for p in task.paths]
        fast, slow = load_volume(paths, task.layouts), load_volume(paths)
        assert fast.spacing == slow.spacing and fast.notes == slow.notes
        np.testing.assert_array_equal(fast.values, slow.values)


# -- pydicom's real files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FeatureSummary]:
    if not REALDATA.is_dir():
        pytest.skip(f"real DICOM files not found at {REALDATA} (CI has them)")
    lakehouse = tmp_path_factory.mktemp("real")
    IngestJob(ImagingReader(), lakehouse).run(REALDATA)
    return lakehouse / "bronze", compute_imaging_features(lakehouse)


def _real_row(duck: Duck, bronze: Path, name: str) -> dict[str, Any]:
    """The feature row of the series the file ``name`` belongs to."""
    uid = pydicom.dcmread(REALDATA / "pydicom" / name, force=True).SeriesInstanceUID
    rows = _rows(duck, bronze, f"select * from {{t}} where series_instance_uid = '{uid}'")
    assert len(rows) == 1, name
    return rows[0]


def _real_world(name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(REALDATA / "pydicom" / name)
        return pydicom.pixels.apply_modality_lut(ds.pixel_array, ds).astype(np.float64)


@needs_realdata
def test_every_real_series_is_accounted_for(duck: Duck, real: tuple[Path, FeatureSummary]) -> None:
    bronze, summary = real
    series = _rows(
        duck,
        bronze,
        "select series_instance_uid as uid, count(*) as n, bool_or(has_pixel_data) as pixels "
        "from {t} where series_instance_uid is not null group by 1",
        "imaging_instances",
    )
    rows = {r["series_instance_uid"]: r for r in _rows(duck, bronze, "select * from {t}")}
    assert rows.keys() == {s["uid"] for s in series} and summary.series_seen == len(series)
    for s in series:
        row = rows[s["uid"]]
        assert row["status"] in STATUSES and row["n_instances"] == s["n"]
        assert row["extractor_name"] == "pyradiomics" and row["extractor_version"]
        assert (row["status"] == "no_pixel_data") == (not s["pixels"])
        if row["status"] != "computed":
            assert row["status_reason"] and row["embedding"] is None
        else:
            assert row["n_decoded"] >= 1 and len(row["embedding"]) == EMBEDDING_DIM
    for name in ("rtplan.dcm", "rtstruct.dcm", "test-SR.dcm", "waveform_ecg.dcm"):
        assert _real_row(duck, bronze, name)["status"] == "no_pixel_data", name


@needs_realdata
def test_real_pixels_become_real_world_values(
    duck: Duck, real: tuple[Path, FeatureSummary]
) -> None:
    bronze, _ = real
    # CT_small: HU = stored - 1024 (its Rescale Intercept); no lesion rule (no body part).
    ct = _real_row(duck, bronze, "CT_small.dcm")
    hu = _real_world("CT_small.dcm")
    assert ct["segmentation"] == "none" and ct["n_slices"] == 1
    assert ct["voxel_spacing_mm"] == pytest.approx([5.0, 0.661468, 0.661468])
    assert ct["firstorder_mean"] == pytest.approx(hu.mean(), rel=1e-6)
    assert ct["firstorder_std"] == pytest.approx(hu.std(), rel=1e-6)
    assert (ct["firstorder_minimum"], ct["firstorder_maximum"]) == (hu.min(), hu.max())
    # RT Dose: 15 frames of 10 x 10, dose = stored x DoseGridScaling (Gy).
    dose = _real_row(duck, bronze, "rtdose.dcm")
    ds = pydicom.dcmread(REALDATA / "pydicom" / "rtdose.dcm")
    gray = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    assert dose["n_slices"] == 15 and dose["voxel_spacing_mm"] == pytest.approx([5, 10, 10])
    assert dose["firstorder_maximum"] == pytest.approx(gray.max(), rel=1e-6)
    assert dose["firstorder_mean"] == pytest.approx(gray.mean(), rel=1e-6)
    # The MR_small family: one SOP instance in seven transfer syntaxes, used once.
    mr = _real_row(duck, bronze, "MR_small.dcm")
    assert mr["status"] == "computed" and mr["n_slices"] == 1
    assert mr["n_decoded"] >= 5  # native and RLE always; JPEG-LS / 2000 with a plugin only
    assert mr["firstorder_mean"] == pytest.approx(_real_world("MR_small.dcm").mean(), rel=1e-6)
    if mr["n_decoded"] < mr["n_instances"]:
        assert "no pixel decoder installed for JPEG" in mr["status_reason"]
    # RGB secondary capture: luminance of frame 0 and 1 (inverted), 100 x 100.
    rgb = _real_row(duck, bronze, "SC_rgb_rle_2frame.dcm")
    assert rgb["status"] == "computed" and rgb["n_decoded"] >= 1


@needs_realdata
def test_real_features_rerun_computes_nothing(real: tuple[Path, FeatureSummary]) -> None:
    bronze, first = real
    summary = compute_imaging_features(bronze.parent)
    assert summary.series_skipped == summary.series_seen == first.series_seen
    assert summary.series_computed == 0


@needs_realdata
def test_a_new_decoder_plugin_retries_only_what_did_not_decode(
    duck: Duck, real: tuple[Path, FeatureSummary], monkeypatch: pytest.MonkeyPatch
) -> None:
    bronze, _ = real
    before = {r["series_instance_uid"]: r for r in _rows(duck, bronze, "select * from {t}")}
    undecoded = {uid for uid, r in before.items() if r["status"] in ("not_decoded", "failed")}
    monkeypatch.setattr(features_module, "pixel_decoders", lambda: {"pylibjpeg": "99.0"})
    summary = compute_imaging_features(bronze.parent)
    assert summary.series_computed == len(undecoded)
    after = {r["series_instance_uid"]: r for r in _rows(duck, bronze, "select * from {t}")}
    assert after.keys() == before.keys()
    changed = {u for u in after if after[u]["_ingest_batch_id"] != before[u]["_ingest_batch_id"]}
    assert changed == undecoded
    assert compute_imaging_features(bronze.parent).series_computed == 0
