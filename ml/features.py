"""From the gold training table to per-modality feature matrices every strategy shares.

``patient_multimodal`` prefixes each feature group (``clinical__``, ``genomics__``, ...) and
carries ``has_<modality>``. ``FeatureSpace`` is fitted on the training split only (medians,
scales, categories), so nothing about validation or test patients leaks into preprocessing.

A modality a patient does not have is *absent*, not zero: ``ModalityData.present`` says which,
and the matrices of absent rows are zeros that strategies must not read as values. Within a
present modality, a missing value (e.g. no albumin measured) is imputed with the training median
and flagged by a ``<column>__missing`` indicator.

Columns never used as features: identifiers, dates (their information is in the day counts),
the label and everything derived from the outcome window, and the availability bookkeeping
columns (``has_*``, ``n_modalities``, ``modality_pattern``), which strategies get as ``present``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

MODALITIES: tuple[str, ...] = ("ehr", "genomics", "imaging", "notes", "wearables")
# Column prefix of each modality's feature group in patient_multimodal.
PREFIXES: dict[str, str] = {
    "ehr": "clinical__",
    "genomics": "genomics__",
    "imaging": "imaging__",
    "notes": "notes__",
    "wearables": "wearables__",
}
# Outcome-window columns: derived from the label's definition, never features.
LEAKAGE_COLUMNS = frozenset({"label", "observation_end", "index_date", "landmark_date"})
MAX_CATEGORIES = 12
MIN_CATEGORY_COUNT = 5
CLIP = 6.0


def presence_column(modality: str) -> str:
    return f"has_{modality}"


@dataclass(frozen=True)
class ModalityData:
    """Feature matrices per modality for one set of patients, plus which modalities exist."""

    keys: np.ndarray  # (n,) patient keys
    x: dict[str, np.ndarray]  # modality -> float32 (n, d_m); zeros where absent
    present: dict[str, np.ndarray]  # modality -> bool (n,)

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.x)

    def subset(self, index: np.ndarray) -> ModalityData:
        """Rows ``index`` (integer positions or a boolean mask)."""
        return ModalityData(
            keys=self.keys[index],
            x={m: v[index] for m, v in self.x.items()},
            present={m: v[index] for m, v in self.present.items()},
        )

    def mask(self, modality: str, keep: np.ndarray) -> ModalityData:
        """Make ``modality`` absent wherever ``keep`` is False (simulated missingness)."""
        present = self.present[modality] & keep
        x = np.where(present[:, None], self.x[modality], 0.0).astype(np.float32)
        return replace(self, x={**self.x, modality: x}, present={**self.present, modality: present})

    def without(self, modality: str) -> ModalityData:
        """The same patients with ``modality`` removed for everyone."""
        return self.mask(modality, np.zeros(self.n, dtype=bool))

    def presence_matrix(self) -> np.ndarray:
        """(n, n_modalities) float32 availability indicators, in ``modalities`` order."""
        return np.stack([self.present[m] for m in self.modalities], axis=1).astype(np.float32)

    def patterns(self) -> np.ndarray:
        """Per patient, the present modalities joined by '+' (as in modality_pattern)."""
        names = np.array(self.modalities)
        matrix = self.presence_matrix().astype(bool)
        return np.array(["+".join(names[row]) or "none" for row in matrix])

    def concatenated(self) -> np.ndarray:
        """Early-fusion design matrix: every modality's features, then availability flags."""
        return np.concatenate([*self.x.values(), self.presence_matrix()], axis=1)


@dataclass
class _Numeric:
    column: str
    median: float
    mean: float
    scale: float
    flag_missing: bool


@dataclass
class _Categorical:
    column: str
    categories: list[str]


@dataclass
class FeatureSpace:
    """Preprocessing fitted on training patients; turns gold rows into ``ModalityData``."""

    numeric: dict[str, list[_Numeric]] = field(default_factory=dict)
    categorical: dict[str, list[_Categorical]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> FeatureSpace:
        space = cls()
        for modality in MODALITIES:
            present = _presence(frame, modality)
            rows = frame[present]
            space.numeric[modality] = []
            space.categorical[modality] = []
            for column in feature_columns(frame, modality):
                series = rows[column]
                if _is_categorical(series):
                    counts = series.dropna().astype(str).value_counts()
                    kept = counts[counts >= MIN_CATEGORY_COUNT].index[:MAX_CATEGORIES].tolist()
                    if kept:
                        space.categorical[modality].append(_Categorical(column, sorted(kept)))
                    continue
                values = pd.to_numeric(series.astype("float64"), errors="coerce")
                observed = values.dropna()
                if observed.nunique() < 2:
                    continue  # constant among training patients: carries no information
                median = float(observed.median())
                filled = values.fillna(median)
                scale = float(filled.std()) or 1.0
                space.numeric[modality].append(
                    _Numeric(column, median, float(filled.mean()), scale, bool(values.isna().any()))
                )
        return space

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if self.feature_names(m))

    def input_columns(self) -> list[str]:
        """Raw gold columns the space reads (the served model's input schema)."""
        columns = [presence_column(m) for m in self.modalities]
        for modality in self.modalities:
            columns += [n.column for n in self.numeric[modality]]
            columns += [c.column for c in self.categorical[modality]]
        return columns

    def feature_names(self, modality: str) -> list[str]:
        names = []
        for num in self.numeric.get(modality, []):
            names.append(num.column)
            if num.flag_missing:
                names.append(f"{num.column}__missing")
        for cat in self.categorical.get(modality, []):
            names += [f"{cat.column}={value}" for value in cat.categories]
        return names

    def transform(self, frame: pd.DataFrame) -> ModalityData:
        x: dict[str, np.ndarray] = {}
        present: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            mask = _presence(frame, modality)
            blocks = []
            for num in self.numeric[modality]:
                values = pd.to_numeric(frame[num.column].astype("float64"), errors="coerce")
                missing = values.isna().to_numpy()
                standard = (values.fillna(num.median).to_numpy() - num.mean) / num.scale
                blocks.append(np.clip(standard, -CLIP, CLIP))
                if num.flag_missing:
                    blocks.append(missing.astype(float))
            for cat in self.categorical[modality]:
                values = frame[cat.column].astype("string")
                blocks += [
                    (values == value).fillna(False).to_numpy(float) for value in cat.categories
                ]
            matrix = np.stack(blocks, axis=1) if blocks else np.zeros((len(frame), 0))
            matrix[~mask] = 0.0
            x[modality] = matrix.astype(np.float32)
            present[modality] = mask
        keys = frame["patient_key"].astype(str).to_numpy()
        return ModalityData(keys=keys, x=x, present=present)


def feature_columns(frame: pd.DataFrame, modality: str) -> list[str]:
    """The gold columns of one modality's feature group that may be features."""
    prefix = PREFIXES[modality]
    chosen = []
    for column in frame.columns:
        if not column.startswith(prefix) or column in LEAKAGE_COLUMNS:
            continue
        if column.endswith("_key") or column.endswith("_date"):
            continue  # identifiers and calendar dates: day counts carry the timing
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            continue
        if frame[column].dtype == object and _looks_like_dates(frame[column]):
            continue
        chosen.append(column)
    return chosen


def _presence(frame: pd.DataFrame, modality: str) -> np.ndarray:
    column = presence_column(modality)
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[column].fillna(False).astype(bool).to_numpy()


def _is_categorical(series: pd.Series) -> bool:
    return bool(
        pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)
    ) and not pd.api.types.is_bool_dtype(series)


def _looks_like_dates(series: pd.Series) -> bool:
    sample = series.dropna().head(5)
    return bool(len(sample)) and all(hasattr(v, "isoformat") for v in sample)
