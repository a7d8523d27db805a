"""The planted signal: every modality predicts the outcome, and fusion beats each one alone.

Features come from `_truth/features.csv`: the observable values each modality's raw files carry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmlake.generate.cohort import MODALITIES
from tests.generate.conftest import read_truth


@pytest.fixture(scope="module")
def frames(cohort) -> tuple[pd.DataFrame, pd.DataFrame]:
    patients = read_truth(cohort.out_dir, "patients.csv").set_index("patient_id")
    features = read_truth(cohort.out_dir, "features.csv")
    features["column"] = features["modality"] + ":" + features["feature"]
    wide = features.pivot_table(index="patient_id", columns="column", values="value")
    return patients, wide.reindex(patients.index)


def _cv_auroc(x: pd.DataFrame, y: pd.Series) -> float:
    """Out-of-fold AUROC of a regularized logistic model, missing values imputed + flagged."""
    filled = x.fillna(x.mean()).fillna(0.0)
    flags = x.isna().any(axis=0)
    design = pd.concat(
        [filled, x.loc[:, flags].isna().add_prefix("missing:").astype(float)], axis=1
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(
        model, design.to_numpy(), y.to_numpy(), cv=folds, method="predict_proba"
    )
    return float(roc_auc_score(y, scores[:, 1]))


def _columns(wide: pd.DataFrame, modality: str) -> list[str]:
    return [c for c in wide.columns if c.startswith(f"{modality}:")]


@pytest.mark.parametrize("modality", MODALITIES)
def test_each_modality_alone_beats_chance(frames, modality: str) -> None:
    patients, wide = frames
    has = patients[f"has_{modality}"] == 1
    columns = _columns(wide, modality)
    assert columns, f"no features recorded for {modality}"
    auroc = _cv_auroc(wide.loc[has, columns], patients.loc[has, "label"])
    assert auroc > 0.56, f"{modality} alone: AUROC {auroc:.3f} on {has.sum()} patients"


def test_all_modalities_together_beat_any_single_one(frames) -> None:
    patients, wide = frames
    y = patients["label"]
    single = {m: _cv_auroc(wide[_columns(wide, m)], y) for m in MODALITIES}
    fused = _cv_auroc(wide, y)
    best = max(single, key=single.get)
    assert fused > single[best] + 0.01, f"fused {fused:.3f} vs best single {best} {single}"


def test_label_prevalence_and_missingness_look_like_the_clinic(frames) -> None:
    patients, _ = frames
    assert 0.25 < patients["label"].mean() < 0.6
    rates = {m: patients[f"has_{m}"].mean() for m in MODALITIES}
    assert rates["ehr"] == 1.0
    assert abs(rates["genomics"] - 0.60) < 0.08
    assert abs(rates["imaging"] - 0.70) < 0.08
    assert abs(rates["notes"] - 0.95) < 0.04
    assert abs(rates["wearables"] - 0.30) < 0.08
    # Genomic testing is ordered more often in advanced disease.
    by_stage = patients.groupby(patients["stage"] >= 3)["has_genomics"].mean()
    assert by_stage[True] > by_stage[False]
    assert np.isfinite(patients["risk"]).all()
