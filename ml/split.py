"""Patient-level splits and the leakage guard.

One row per patient in gold, so splitting rows is splitting patients: no patient's data is in
two splits. The split is stratified by label and availability pattern size, so every split sees
the cohort's missingness, and it depends only on the seed and the set of patient keys (sorted
first), not on the row order a query happened to return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from ml.data import KEY, LABEL, MLInputError, require_two_classes
from ml.features import FeatureSpace

TEST_FRACTION = 0.2
VALID_FRACTION = 0.2
# A single feature that separates the label this well is almost certainly derived from it.
LEAKAGE_AUROC = 0.98


def split_patients(frame: pd.DataFrame, seed: int) -> pd.Series:
    """patient_key -> 'train' | 'valid' | 'test' (60/20/20, stratified, seeded)."""
    ordered = frame.sort_values(KEY).reset_index(drop=True)
    y = ordered[LABEL].astype(int).to_numpy()
    require_two_classes(y, "the training table")
    n_modalities = ordered.filter(like="has_").fillna(False).astype(bool).sum(axis=1)
    strata = pd.Series(y).astype(str) + ":" + n_modalities.clip(upper=4).astype(str)
    if strata.value_counts().min() < 5:  # too few per stratum: stratify by label only
        strata = pd.Series(y).astype(str)
    index = np.arange(len(ordered))
    rest, test = train_test_split(
        index, test_size=TEST_FRACTION, stratify=strata, random_state=seed
    )
    train, valid = train_test_split(
        rest,
        test_size=VALID_FRACTION / (1 - TEST_FRACTION),
        stratify=strata.iloc[rest],
        random_state=seed,
    )
    labels = np.empty(len(ordered), dtype=object)
    labels[train], labels[valid], labels[test] = "train", "valid", "test"
    split = pd.Series(labels, index=ordered[KEY].astype(str).to_numpy(), name="split")
    for name in ("train", "valid", "test"):
        require_two_classes(y[labels == name], f"the {name} split")
    return split


def assert_no_leakage(space: FeatureSpace, frame: pd.DataFrame) -> None:
    """Refuse to train when one feature on its own all but reproduces the label."""
    data = space.transform(frame)
    y = frame[LABEL].astype(int).to_numpy()
    for modality in data.modalities:
        rows = data.present[modality]
        if rows.sum() < 20 or len(np.unique(y[rows])) < 2:
            continue
        for j, name in enumerate(space.feature_names(modality)):
            values = data.x[modality][rows, j]
            if np.unique(values).size < 2:
                continue
            auc = roc_auc_score(y[rows], values)
            if max(auc, 1 - auc) >= LEAKAGE_AUROC:
                raise MLInputError(
                    f"feature {name} alone separates the label (AUROC {max(auc, 1 - auc):.3f} "
                    f">= {LEAKAGE_AUROC}); it is probably derived from the outcome - remove it "
                    "from the gold feature tables"
                )
