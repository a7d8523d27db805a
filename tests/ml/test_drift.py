"""Drift: PSI per feature, availability and label drift, the report files and the MLflow run.

Compute-level tests use synthetic frames shaped like ``patient_multimodal``; the end-to-end test
writes two real Delta versions of that table and reads them back through ``load_gold`` into a
real MLflow sqlite store inside the temporary lakehouse.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.data import MLInputError
from ml.drift import run_drift
from ml.drift.compute import (
    MAJOR,
    MISSING,
    MODERATE,
    NOT_COMPUTED,
    PSI_MAJOR,
    PSI_MODERATE,
    STABLE,
    compute_drift,
    numeric_histograms,
    psi,
    psi_status,
)
from mmlake.delta import write_delta

PNG = b"\x89PNG\r\n\x1a\n"
RATES = {"ehr": 1.0, "genomics": 0.6, "imaging": 0.7, "notes": 0.9, "wearables": 0.4}


def gold_frame(n: int = 800, seed: int = 0, **rates: float) -> pd.DataFrame:
    """A small patient_multimodal: keys, label, has_* and a few features of every modality.

    Features of an absent modality are null, as in gold (the LEFT JOIN found nothing).
    """
    rng = np.random.default_rng(seed)
    rates = {**RATES, **rates}
    has = {m: rng.random(n) < rate for m, rate in rates.items()}
    label = (rng.random(n) < 0.35).astype(float)
    label[rng.random(n) < 0.1] = np.nan  # outcome window not complete yet: unlabelled

    def only(modality: str, values: np.ndarray) -> pd.Series:
        return pd.Series(values).where(has[modality])

    albumin = pd.Series(rng.normal(3.9, 0.45, n).round(1))
    albumin[rng.random(n) < 0.15] = np.nan  # not drawn, although the patient has EHR data
    frame = pd.DataFrame(
        {
            "patient_key": [f"pk{i:05d}" for i in range(n)],
            "label": pd.array(label, dtype="Int32"),
            **{f"has_{m}": has[m] for m in RATES},
            "clinical__age_at_index": rng.integers(35, 90, n).astype("int32"),
            "clinical__sex": rng.choice(["female", "male"], n),
            "clinical__ecog": rng.choice([0, 1, 2, 3], n, p=[0.4, 0.35, 0.2, 0.05]),
            "clinical__albumin_g_dl": albumin,
            "genomics__kras_mutated": only("genomics", rng.random(n) < 0.2).astype("boolean"),
            "genomics__tmb_per_mb": only("genomics", rng.lognormal(1.5, 0.8, n)),
            "imaging__lesion_volume_ml": only("imaging", rng.gamma(2.0, 8.0, n)),
            "notes__n_notes": only("notes", rng.poisson(6, n)).astype("Int32"),
            "wearables__steps_mean": only("wearables", rng.normal(5200, 1500, n)),
            "wearables__resting_hr_mean": only("wearables", rng.normal(72, 8, n)),
        }
    )
    return frame


def by_feature(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {f["feature"]: f for f in report["features"]}


def by_modality(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {a["modality"]: a for a in report["availability"]}


# --- compute -------------------------------------------------------------------------------


def test_psi_is_zero_for_identical_histograms_and_finite_for_empty_bins() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    # A category that disappears: epsilon smoothing keeps the log finite, and the drift large.
    vanished = psi([50, 50], [100, 0])
    assert math.isfinite(vanished) and vanished > PSI_MAJOR
    assert psi([], [1]) is None and psi([0, 0], [1, 1]) is None
    assert [psi_status(v) for v in (0.0, 0.099, PSI_MODERATE, 0.2, PSI_MAJOR, None)] == [
        STABLE, STABLE, MODERATE, MODERATE, MAJOR, NOT_COMPUTED,
    ]  # fmt: skip


def test_identical_frames_are_stable_everywhere() -> None:
    frame = gold_frame()
    report = compute_drift(frame, frame.copy())
    assert report["overall"] == STABLE
    assert report["summary"]["n_features"] == 10  # every prefixed feature column, each modality
    for item in report["features"]:
        assert item["psi"] == pytest.approx(0.0, abs=1e-9), item["feature"]
        assert item["status"] == STABLE
    for item in report["availability"]:
        assert item["difference"] == 0.0 and not item["flagged"] and item["psi"] == 0.0
    assert report["label"]["difference"] == 0.0
    assert report["label"]["status"] == STABLE
    assert report["schema"] == {"only_reference": [], "only_current": []}


def test_numeric_bins_are_reference_deciles_with_open_ends_and_a_missing_bin() -> None:
    reference = pd.Series(np.arange(1.0, 101.0))
    current = pd.Series([-1e6, 50.5, 1e6, np.nan])
    labels, ref_counts, cur_counts = numeric_histograms(reference, current)
    assert len(labels) == 11 and labels[-1] == MISSING
    assert ref_counts[:-1].tolist() == [10.0] * 10 and ref_counts[-1] == 0
    # Values far outside the reference range land in the outer bins instead of being dropped.
    assert cur_counts[0] == 1 and cur_counts[9] == 1 and cur_counts[-1] == 1
    assert cur_counts.sum() == len(current)
    # Discrete scores: tied deciles collapse, so each level is one bin.
    levels, counts, _ = numeric_histograms(pd.Series([0, 1, 2, 3] * 25), pd.Series([0, 1]))
    assert len(levels) == 4 and counts.tolist() == [25.0] * 4


def test_a_shifted_numeric_feature_is_major_and_ranked_first() -> None:
    reference = gold_frame(seed=1)
    current = reference.copy()
    current["clinical__albumin_g_dl"] = current["clinical__albumin_g_dl"] - 0.5  # ~1 SD
    report = compute_drift(reference, current)
    top = report["features"][0]
    assert top["feature"] == "clinical__albumin_g_dl"
    assert top["status"] == MAJOR and top["psi"] > 1.0 and not top["within_noise"]
    # Lower albumin fills the lowest reference decile.
    assert top["largest_shift"]["current"] > top["largest_shift"]["reference"]
    assert report["summary"]["n_features_major"] == 1
    assert report["overall"] == MAJOR
    psis = [f["psi"] for f in report["features"]]
    assert psis == sorted(psis, reverse=True)


def test_a_categorical_shift_counts_categories_of_both_sides() -> None:
    reference = gold_frame(seed=2)
    current = reference.copy()
    current.loc[current.index[:200], "clinical__sex"] = "unknown"  # a new code appears
    item = by_feature(compute_drift(reference, current))["clinical__sex"]
    assert item["kind"] == "categorical"
    assert item["bins"] == ["female", "male", "unknown"]
    assert item["reference_share"][2] == 0.0 and item["current_share"][2] == 0.25
    assert item["status"] == MAJOR


def test_availability_change_is_flagged_apart_from_feature_psi() -> None:
    reference = gold_frame(n=1000, seed=3)
    current = reference.copy()
    rng = np.random.default_rng(3)
    # The wearables programme loses half its patients at random: fewer have the modality,
    # but those who still have it look like before.
    dropped = current["has_wearables"] & (rng.random(len(current)) < 0.5)
    current.loc[dropped, "has_wearables"] = False
    current.loc[dropped, ["wearables__steps_mean", "wearables__resting_hr_mean"]] = np.nan
    report = compute_drift(reference, current)

    wearables = by_modality(report)["wearables"]
    ref_rate, cur_rate = reference["has_wearables"].mean(), current["has_wearables"].mean()
    assert wearables["reference_rate"] == pytest.approx(ref_rate)
    assert wearables["current_rate"] == pytest.approx(cur_rate)
    assert ref_rate - cur_rate >= 0.10
    assert wearables["abs_difference"] == pytest.approx(ref_rate - cur_rate)
    assert wearables["difference"] == pytest.approx(cur_rate - ref_rate)
    expected = (cur_rate - ref_rate) * math.log(cur_rate / ref_rate) + (
        ref_rate - cur_rate
    ) * math.log((1 - cur_rate) / (1 - ref_rate))
    assert wearables["psi"] == pytest.approx(expected)
    assert wearables["flagged"] and wearables["status"] in (MODERATE, MAJOR)
    assert report["summary"]["availability_flagged"] == ["wearables"]
    assert report["overall"] in (MODERATE, MAJOR)
    # Among patients who still have wearables, the features are a random subset: no shift
    # beyond sampling noise, so an emptier modality is not misread as a shifted one.
    features = by_feature(report)
    for column in ("wearables__steps_mean", "wearables__resting_hr_mean"):
        assert features[column]["n_current"] == int(current["has_wearables"].sum())
        assert features[column]["within_noise"], features[column]["psi"]


def test_a_modality_gone_from_current_is_not_computed_but_its_availability_is_major() -> None:
    reference = gold_frame(seed=4)
    current = reference.copy()
    current["has_wearables"] = False
    report = compute_drift(reference, current)
    item = by_feature(report)["wearables__steps_mean"]
    assert item["psi"] is None and item["status"] == NOT_COMPUTED
    assert "current" in item["note"]
    assert report["features"][-1]["psi"] is None  # uncomputable features sort last
    assert by_modality(report)["wearables"]["status"] == MAJOR
    assert report["overall"] == MAJOR


def test_label_drift_uses_labelled_patients_only() -> None:
    reference = gold_frame(seed=5)
    current = reference.copy()
    labelled = current["label"].notna().to_numpy()
    rng = np.random.default_rng(5)
    flip = (
        labelled & (current["label"].fillna(1).to_numpy() == 0) & (rng.random(len(current)) < 0.4)
    )
    current.loc[flip, "label"] = 1
    report = compute_drift(reference, current)
    label = report["label"]
    ref_rate = reference["label"].dropna().astype(float).mean()
    cur_rate = current["label"].dropna().astype(float).mean()
    assert label["n_reference"] == int(labelled.sum())  # unlabelled rows are not counted
    assert label["reference_rate"] == pytest.approx(ref_rate)
    assert label["current_rate"] == pytest.approx(cur_rate)
    assert cur_rate - ref_rate >= 0.10
    assert label["difference"] == pytest.approx(cur_rate - ref_rate)
    expected = (cur_rate - ref_rate) * math.log(cur_rate / ref_rate) + (
        ref_rate - cur_rate
    ) * math.log((1 - cur_rate) / (1 - ref_rate))
    assert label["psi"] == pytest.approx(expected)
    assert label["flagged"] and label["status"] in (MODERATE, MAJOR)

    unlabelled = current.assign(label=pd.array([None] * len(current), dtype="Int32"))
    no_label = compute_drift(reference, unlabelled)
    assert no_label["label"]["status"] == NOT_COMPUTED
    assert no_label["overall"] == STABLE  # features and availability did not move


def test_columns_of_one_side_only_are_reported_as_schema_changes() -> None:
    reference = gold_frame(seed=6)
    current = reference.drop(columns=["notes__n_notes"]).assign(imaging__n_studies=1)
    report = compute_drift(reference, current)
    assert report["schema"] == {
        "only_reference": ["notes__n_notes"],
        "only_current": ["imaging__n_studies"],
    }
    assert "notes__n_notes" not in by_feature(report)


# --- end to end ----------------------------------------------------------------------------


def _write_version(lakehouse: Path, frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_delta(lakehouse / "gold" / "patient_multimodal", table, mode="overwrite")


def test_run_drift_end_to_end_with_delta_versions_and_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # anything MLflow resolves relative to cwd stays in tmp
    lakehouse = tmp_path / "lakehouse"
    reference = gold_frame(n=600, seed=7)
    _write_version(lakehouse, reference)  # version 0
    current = gold_frame(n=650, seed=8, genomics=0.3)  # a new build: genomics much rarer
    current["clinical__albumin_g_dl"] = current["clinical__albumin_g_dl"] + 0.6
    current.loc[:39, "clinical__sex"] = "<b>x</b>"  # data reaches the HTML: must be escaped
    _write_version(lakehouse, current)  # version 1

    with pytest.raises(MLInputError, match="no finished training run") as no_train:
        run_drift(lakehouse, None, None)
    assert "\n" not in str(no_train.value)

    result = run_drift(lakehouse, "version:0", None)
    out = lakehouse / "reports" / "drift"
    assert result.paths.json == out / "drift.json"
    report = json.loads((out / "drift.json").read_text())
    assert report["reference"]["gold_version"] == 0 and report["reference"]["run_id"] is None
    assert report["current"]["gold_version"] == 1 and report["current"]["rows"] == 650
    assert report["thresholds"]["psi_major"] == PSI_MAJOR
    assert report["overall"] == result.status == MAJOR
    assert report["features"][0]["feature"] == "clinical__albumin_g_dl"
    assert by_modality(report)["genomics"]["flagged"]
    assert report["mlflow_run_id"] == result.mlflow_run_id
    for name in ("drift_psi.png", "drift_availability.png"):
        assert (out / name).read_bytes().startswith(PNG)
    page = (out / "drift.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "clinical__albumin_g_dl" in page and "data:image/png;base64," in page

    store = f"sqlite:///{lakehouse.resolve()}/mlflow.db"
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.`mmlake.kind` = 'drift'",
        output_format="list",
    )
    assert [r.info.run_id for r in runs] == [result.mlflow_run_id]
    drift_run = runs[0]
    metrics = drift_run.data.metrics
    assert metrics["psi_max"] == pytest.approx(report["summary"]["psi_max"])
    assert metrics["n_features_major"] >= 1
    assert metrics["availability_diff_genomics"] == pytest.approx(
        by_modality(report)["genomics"]["abs_difference"]
    )
    assert metrics["label_rate_diff"] == pytest.approx(report["label"]["difference"])
    assert "mmlake.train_run_id" not in drift_run.data.tags
    artifacts = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(
        drift_run.info.run_id, "drift")}  # fmt: skip
    assert artifacts == {"drift.json", "drift.html", "drift_psi.png", "drift_availability.png"}

    # A training run on version 0: the default reference, recorded on the drift run.
    mlflow.set_experiment(experiment_id=drift_run.info.experiment_id)
    with mlflow.start_run(tags={"mmlake.kind": "train", "mmlake.gold_version": "0"}) as train:
        pass
    linked = run_drift(lakehouse, None, 1)
    assert linked.report["reference"] == {**report["reference"], "run_id": train.info.run_id}
    assert mlflow.get_run(linked.mlflow_run_id).data.tags["mmlake.train_run_id"] == (
        train.info.run_id
    )
    assert run_drift(lakehouse, train.info.run_id, 0).status == STABLE

    for bad, message in [
        ("0123456789abcdef0123456789abcdef", "unknown MLflow run"),
        (result.mlflow_run_id, "not a training run"),
        ("version:7", "gold version 7"),
        ("version:latest", "expected version:<N>"),
    ]:
        with pytest.raises(MLInputError, match=message) as error:
            run_drift(lakehouse, bad, None)
        assert "\n" not in str(error.value)
    with pytest.raises(MLInputError, match="gold version 5"):
        run_drift(lakehouse, "version:0", 5)
