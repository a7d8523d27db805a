"""Attention weights of the attention-fusion model: per patient, and averaged by cohort.

Where the model looks is part of what a reviewer needs to trust it: a patient whose score rests
almost entirely on one modality reads differently from one supported by all of them. The
per-patient weights go to ``attention_weights.csv`` and their means per cancer type to
``attention_by_cohort.json``; the cohort-wide mean per modality is logged as metrics.
"""

from __future__ import annotations

import pandas as pd

from ml.data import KEY
from ml.features import FeatureSpace
from ml.strategies.base import FusionStrategy


def attention_table(
    strategy: FusionStrategy, space: FeatureSpace, frame: pd.DataFrame
) -> pd.DataFrame | None:
    """patient_key, cancer_type and one weight column per modality (None without attention)."""
    weights_of = getattr(strategy, "attention_weights", None)
    if weights_of is None:
        return None
    data = space.transform(frame)
    weights = weights_of(data)
    table = pd.DataFrame(weights, columns=[f"attention_{m}" for m in data.modalities])
    table.insert(0, "cancer_type", frame["cancer_type"].fillna("unknown").to_numpy())
    table.insert(0, KEY, data.keys)
    table["modality_pattern"] = data.patterns()
    return table


def log_attention(
    fitted: dict[str, FusionStrategy], space: FeatureSpace, frame: pd.DataFrame
) -> pd.DataFrame | None:
    import mlflow

    strategy = fitted.get("attention")
    if strategy is None:
        return None
    table = attention_table(strategy, space, frame)
    if table is None:
        return None
    columns = [c for c in table.columns if c.startswith("attention_")]
    mlflow.log_text(table.to_csv(index=False), "attention_weights.csv")
    by_cohort = table.groupby("cancer_type")[columns].mean().round(4)
    overall = table[columns].mean().round(4)
    mlflow.log_dict(
        {"overall": overall.to_dict(), "by_cancer_type": by_cohort.to_dict(orient="index")},
        "attention_by_cohort.json",
    )
    mlflow.log_metrics({f"{c}_mean": float(v) for c, v in overall.items()})
    return table
