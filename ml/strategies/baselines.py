"""Baselines every fusion strategy must beat: one modality alone, and one model per combination.

``single:<modality>`` uses only that modality (the training prevalence for patients without
it): the question "is fusion worth it?" is answered against the best of these.
``per_combination`` is the classic workaround for missing modalities: a separate model for every
combination of modalities, trained on the patients who have at least that combination; a patient
is scored by the model of the largest combination they have (ties: the one trained on more
patients). It needs no imputation, but each model sees fewer patients.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from sklearn.linear_model import LogisticRegression

from ml.features import ModalityData
from ml.strategies.base import FitContext, FusionStrategy, prevalence
from ml.strategies.late import ModalityModels, fit_logistic


class SingleModality(FusionStrategy):
    def __init__(self, modality: str) -> None:
        self.modality = modality
        self.name = f"single:{modality}"
        self.models = ModalityModels()

    def fit(self, ctx: FitContext) -> SingleModality:
        self.models.fit(ctx.train, ctx.y_train)
        return self

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        return self.models.predict(data, self.modality)

    def params(self) -> dict[str, object]:
        return {"modality": self.modality, "estimator": "logistic"}


class PerCombination(FusionStrategy):
    name = "per_combination"

    def __init__(self) -> None:
        # combination -> (model, training patients)
        self.models: dict[tuple[str, ...], tuple[LogisticRegression, int]] = {}
        self.prior = 0.5

    def fit(self, ctx: FitContext) -> PerCombination:
        data, y = ctx.train, ctx.y_train
        self.prior = prevalence(y)
        for size in range(1, len(data.modalities) + 1):
            for combo in combinations(data.modalities, size):
                rows = np.logical_and.reduce([data.present[m] for m in combo])
                x = np.concatenate([data.x[m][rows] for m in combo], axis=1)
                model = fit_logistic(x, y[rows])
                if model is not None:
                    self.models[combo] = (model, int(rows.sum()))
        return self

    def _choose(self, present: tuple[str, ...]) -> tuple[str, ...] | None:
        candidates = [c for c in self.models if set(c) <= set(present)]
        if not candidates:
            return None
        return max(candidates, key=lambda c: (len(c), self.models[c][1]))

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        out = np.full(data.n, self.prior)
        patterns = data.patterns()
        for pattern in np.unique(patterns):
            combo = self._choose(tuple(pattern.split("+")))
            if combo is None:
                continue
            rows = patterns == pattern
            x = np.concatenate([data.x[m][rows] for m in combo], axis=1)
            out[rows] = self.models[combo][0].predict_proba(x)[:, 1]
        return out

    def params(self) -> dict[str, object]:
        return {"estimator": "logistic", "n_combination_models": len(self.models)}
