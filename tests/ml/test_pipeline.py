"""Train -> evaluate -> score on a real cohort: the fusion claims, reproducibility, serving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import tracking
from ml.cli import quiet_mlflow
from ml.data import MLInputError, load_gold
from ml.features import MODALITIES, PREFIXES, FeatureSpace
from ml.train import FUSION, TrainConfig, prepare, train

pytestmark = pytest.mark.slow


def _results(evaluated) -> dict[tuple[str, str], dict]:
    report = json.loads(evaluated.json_path.read_text())
    return {(r["strategy"], r["scenario"]): r for r in report["results"]}


def test_evaluation_json_is_the_documented_interface(evaluated) -> None:
    report = json.loads(evaluated.json_path.read_text(), parse_constant=_no_nan)
    assert {"results", "subgroups", "gold_versions"} <= set(report)
    strategies = {r["strategy"] for r in report["results"]}
    assert set(FUSION) | {"per_combination"} <= strategies
    assert {f"single:{m}" for m in MODALITIES} <= strategies
    scenarios = {r["scenario"] for r in report["results"]}
    assert {"complete", "realistic", "shifted"} | {f"without:{m}" for m in MODALITIES} <= scenarios
    for row in report["results"]:
        assert {"strategy", "scenario", "n", "auroc", "auroc_ci", "auprc", "brier", "ece"} <= set(
            row
        )
        if row["auroc"] is not None:
            low, high = row["auroc_ci"]
            assert low <= row["auroc"] <= high
    assert report["gold_versions"]["patient_multimodal"] == 0
    for plot in evaluated.plots.values():
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _no_nan(value: str) -> None:
    raise AssertionError(f"{value} in evaluation.json")


def test_training_run_records_what_it_read(ml_cohort, trained) -> None:
    import mlflow

    run = mlflow.get_run(trained.run_id)
    tags = run.data.tags
    assert tags[tracking.TAG_KIND] == "train"
    assert tags[tracking.TAG_GOLD_VERSION] == "0"
    assert json.loads(tags[tracking.TAG_GOLD_VERSIONS])["patient_multimodal"] == 0
    manifest = ml_cohort.lakehouse / "dbt" / "target" / "manifest.json"
    import hashlib

    assert tags[tracking.TAG_MANIFEST] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    names = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert "gold.patient_multimodal@v0" in names
    split_text = mlflow.artifacts.load_text(f"runs:/{trained.run_id}/split.csv")
    split = pd.read_csv(pd.io.common.StringIO(split_text))
    assert split["patient_key"].is_unique  # one patient, one split: no leakage across splits
    assert set(split["split"]) == {"train", "valid", "test"}


def test_training_twice_at_the_same_gold_version_gives_the_same_metrics(ml_cohort, trained) -> None:
    with quiet_mlflow():
        again = train(ml_cohort.lakehouse, TrainConfig(seed=0, gold_version=0, register=False))
    assert again.gold_versions == trained.gold_versions
    assert again.valid_auroc == trained.valid_auroc
    assert again.champion == trained.champion


def test_label_derived_features_are_refused(ml_cohort) -> None:
    snapshot = load_gold(ml_cohort.lakehouse)
    space = FeatureSpace.fit(snapshot.labelled())
    leaky = {"label", "observation_end", "index_date", "landmark_date"}
    assert not leaky & set(space.input_columns())
    assert all(c.startswith(("has_", *PREFIXES.values())) for c in space.input_columns())
    # A feature group carrying the outcome (as a mistaken gold join would) stops training.
    frame = snapshot.labelled().assign(clinical__progressed=lambda f: f["label"])
    with pytest.raises(MLInputError, match="clinical__progressed alone separates the label"):
        from ml.split import assert_no_leakage

        assert_no_leakage(FeatureSpace.fit(frame), frame)


def test_champion_is_registered_with_signature_and_model_card(ml_cohort, trained, evaluated):
    from mlflow import MlflowClient

    client = MlflowClient()
    version = client.get_model_version_by_alias(tracking.MODEL_NAME, tracking.CHAMPION_ALIAS)
    assert version.tags["train_run_id"] == trained.run_id
    assert version.tags["strategy"] == trained.champion
    assert "## Missingness behaviour" in version.description
    card = evaluated.model_card.read_text()
    for section in ("## Intended use", "## Data", "## Subgroups", "## Limits"):
        assert section in card
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{tracking.MODEL_NAME}@{tracking.CHAMPION_ALIAS}")
    names = {spec.name for spec in model.metadata.signature.inputs.inputs}
    assert {f"has_{m}" for m in MODALITIES} <= names


def test_attention_weights_are_logged_and_ignore_absent_modalities(trained) -> None:
    import mlflow

    text = mlflow.artifacts.load_text(f"runs:/{trained.run_id}/attention_weights.csv")
    table = pd.read_csv(pd.io.common.StringIO(text))
    weights = table[[f"attention_{m}" for m in MODALITIES]].to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    no_wearables = ~table["modality_pattern"].str.contains("wearables")
    assert (table.loc[no_wearables, "attention_wearables"] == 0).all()
    by_cohort = json.loads(
        mlflow.artifacts.load_text(f"runs:/{trained.run_id}/attention_by_cohort.json")
    )
    assert by_cohort["by_cancer_type"]


def test_score_writes_risk_scores_once_per_model_and_gold_version(ml_cohort, trained) -> None:
    from ml.score import score
    from mmlake.duckdb_ext import connect

    with quiet_mlflow():
        first = score(ml_cohort.lakehouse)
        second = score(ml_cohort.lakehouse)
    assert first.model_version == second.model_version == trained.model_version
    with connect() as con:
        rows = con.sql(
            "select * from delta_scan(?) where model_version = ? and gold_version = 0",
            params=[str(first.path), first.model_version],
        ).df()
    gold = load_gold(ml_cohort.lakehouse).frame
    assert len(rows) == len(gold) == rows["patient_key"].nunique()
    assert rows["score"].between(0, 1).all()
    assert set(rows["gold_version"]) == {0}
    merged = rows.merge(gold, on="patient_key")
    has_imaging = merged["modalities_present"].str.contains("imaging")
    assert (has_imaging == merged["has_imaging"].astype(bool)).all()


def test_a_patient_with_only_ehr_is_scored(ml_cohort, trained) -> None:
    import mlflow

    from ml.score import score_frame

    gold = load_gold(ml_cohort.lakehouse).frame
    patient = gold.head(1).copy()
    for modality in MODALITIES[1:]:
        patient[f"has_{modality}"] = False
        prefixed = [c for c in patient.columns if c.startswith(PREFIXES[modality])]
        patient[prefixed] = None
    with quiet_mlflow():
        model = mlflow.pyfunc.load_model(f"models:/{tracking.MODEL_NAME}@champion")
        scores = score_frame(model, patient)
    assert scores.shape == (1,) and 0.0 < scores[0] < 1.0


def test_a_feature_table_that_does_not_match_the_signature_is_refused(ml_cohort, trained):
    import mlflow

    from ml.score import score_frame

    gold = load_gold(ml_cohort.lakehouse).frame.drop(columns=["clinical__ecog"])
    with quiet_mlflow():
        model = mlflow.pyfunc.load_model(f"models:/{tracking.MODEL_NAME}@champion")
        with pytest.raises(MLInputError, match="does not match the registered model's signature"):
            score_frame(model, gold)


def test_prepare_uses_the_requested_gold_version(ml_cohort) -> None:
    prepared = prepare(ml_cohort.lakehouse, 0, seed=0)
    assert prepared.snapshot.gold_version == 0
    counts = prepared.split.value_counts()
    assert counts["test"] == pytest.approx(0.2 * len(prepared.frame), abs=2)


def test_drift_against_the_training_run(ml_cohort, trained) -> None:
    from ml.drift import run_drift

    with quiet_mlflow():
        result = run_drift(ml_cohort.lakehouse, trained.run_id, None)
    report = json.loads(Path(result.paths.json).read_text())
    # Same gold version as training: nothing has drifted.
    assert result.status == report["overall"] == "stable"
