"""The served form of a fusion model: an MLflow pyfunc that takes gold rows and returns scores.

The model's input is the raw gold columns it was trained on (``FeatureSpace.input_columns``),
with a fixed type per column so that the signature does not depend on whether a column happened
to contain nulls: availability flags are booleans, categorical features strings, everything
else double. ``prepare_input`` applies that typing, and ``check_schema`` turns a mismatch with
the registered signature into a one-line error instead of a stack trace from deep inside a model.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

try:  # the pyfunc base class; ml.serving is importable without MLflow for unit use
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - mlflow is a core dependency
    PythonModel = object  # type: ignore[assignment,misc]

from ml.data import MLInputError
from ml.features import FeatureSpace, presence_column
from ml.strategies.base import FusionStrategy

SCORE_COLUMN = "score"


def column_kinds(space: FeatureSpace) -> dict[str, str]:
    """Input column -> MLflow type name (boolean, string, double)."""
    kinds: dict[str, str] = {}
    for modality in space.modalities:
        kinds[presence_column(modality)] = "boolean"
        for num in space.numeric[modality]:
            kinds[num.column] = "double"
        for cat in space.categorical[modality]:
            kinds[cat.column] = "string"
    return kinds


def prepare_input(frame: pd.DataFrame, space: FeatureSpace) -> pd.DataFrame:
    """Gold rows -> the model's typed input frame (missing columns raise MLInputError)."""
    kinds = column_kinds(space)
    missing = [c for c in kinds if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise MLInputError(
            f"input does not match the model's signature: {len(missing)} column(s) missing "
            f"({shown})"
        )
    out = {}
    for column, kind in kinds.items():
        series = frame[column]
        if kind == "boolean":
            out[column] = series.fillna(False).astype(bool)
        elif kind == "string":
            out[column] = series.astype("object").where(series.notna(), None)
        else:
            out[column] = pd.to_numeric(series.astype("float64"), errors="coerce")
    return pd.DataFrame(out, index=frame.index)


def check_schema(frame: pd.DataFrame, signature: object) -> None:
    """Compare gold columns and types with a registered model's input signature."""
    inputs = getattr(signature, "inputs", None)
    if inputs is None:
        return
    problems = []
    for spec in inputs.inputs:
        name, kind = spec.name, getattr(spec.type, "name", "any")
        if name not in frame.columns:
            problems.append(f"{name} missing")
            continue
        series = frame[name]
        if kind == "double" and not _all_numbers(series):
            problems.append(f"{name} is {series.dtype}, expected a number")
        elif kind == "boolean" and not _all_booleans(series):
            problems.append(f"{name} is {series.dtype}, expected boolean")
    if problems:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise MLInputError(
            f"feature table does not match the registered model's signature: {shown}"
        )


def _all_numbers(series: pd.Series) -> bool:
    """Numeric or boolean dtype, or (object columns, e.g. all-null) only numbers or nulls."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return True
    values = series.dropna()
    return bool(values.map(lambda v: isinstance(v, int | float | Decimal | np.number)).all())


def _all_booleans(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return True
    return bool(series.dropna().isin([True, False]).all())


class FusionModel(PythonModel):
    """A fitted FeatureSpace + strategy, served as one pyfunc."""

    def __init__(self, space: FeatureSpace, strategy: FusionStrategy) -> None:
        self.space = space
        self.strategy = strategy

    def predict(self, context: object, model_input: pd.DataFrame, params: dict | None = None):
        prepared = prepare_input(model_input, self.space)
        data = self.space.transform(_with_keys(prepared, model_input))
        scores = self.strategy.predict_proba(data)
        return pd.DataFrame({SCORE_COLUMN: np.asarray(scores, dtype=float)})


def _with_keys(prepared: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    if "patient_key" in original.columns:
        return prepared.assign(patient_key=original["patient_key"].astype(str).to_numpy())
    return prepared.assign(patient_key=[str(i) for i in range(len(prepared))])
