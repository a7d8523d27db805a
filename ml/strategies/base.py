"""What every fusion strategy provides, so training, evaluation and serving treat them alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ml.features import ModalityData


@dataclass(frozen=True)
class FitContext:
    """Everything a strategy may use to fit: training and validation data, labels, seed."""

    train: ModalityData
    y_train: np.ndarray  # int 0/1
    valid: ModalityData
    y_valid: np.ndarray
    seed: int
    modality_dropout: float = 0.3  # neural strategies: probability of hiding a present modality


class FusionStrategy(ABC):
    """A model of P(progression | the modalities a patient has).

    ``predict_proba`` must accept any availability pattern, including patterns never seen in
    training: that is the property the evaluation scenarios measure.
    """

    #: name in reports and MLflow: early, intermediate, late, attention, single:<m>, ...
    name: str = ""

    @abstractmethod
    def fit(self, ctx: FitContext) -> FusionStrategy: ...

    @abstractmethod
    def predict_proba(self, data: ModalityData) -> np.ndarray:
        """(n,) probabilities of the positive class."""

    def params(self) -> dict[str, object]:
        """Hyper-parameters logged to MLflow."""
        return {}


def prevalence(y: np.ndarray) -> float:
    """Training prevalence: the honest prediction when a model has nothing to go on."""
    return float(np.clip(np.mean(y), 1e-3, 1 - 1e-3))
