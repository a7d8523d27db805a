"""Late fusion: one model per modality, combined by what the patient actually has.

Each modality's model is trained only on the patients who have that modality, so it never
learns from imputed values. A stacker then combines their predictions: its inputs are each
model's logit (zero when the modality is absent) and the availability flags, so the weight of a
modality and the baseline shift of its absence are learned rather than assumed. The stacker is
trained on out-of-fold predictions (no patient's own label leaks into its inputs) and Platt-
recalibrated on the validation split.

The stacker is also shown each training patient with some modalities hidden (the same modality
dropout the neural strategies use), so its weights are learned for the subsets deployment will
present, not only for the combinations the training cohort happened to have.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ml.features import ModalityData
from ml.strategies.base import FitContext, FusionStrategy, prevalence

MIN_PATIENTS = 30  # fewer patients with a modality than this: its model is not trusted
C_BASE = 0.3


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = C_BASE) -> LogisticRegression | None:
    """L2 logistic regression, or None when the data cannot support one."""
    if len(y) < MIN_PATIENTS or len(np.unique(y)) < 2 or x.shape[1] == 0:
        return None
    return LogisticRegression(C=c, max_iter=5000).fit(x, y)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class ModalityModels:
    """One logistic model per modality, fitted on the patients who have it."""

    def __init__(self) -> None:
        self.models: dict[str, LogisticRegression | None] = {}
        self.prior = 0.5

    def fit(self, data: ModalityData, y: np.ndarray) -> ModalityModels:
        self.prior = prevalence(y)
        for modality in data.modalities:
            rows = data.present[modality]
            self.models[modality] = fit_logistic(data.x[modality][rows], y[rows])
        return self

    def predict(self, data: ModalityData, modality: str) -> np.ndarray:
        """P(label) from one modality; the training prevalence where it is absent."""
        out = np.full(data.n, self.prior)
        model = self.models.get(modality)
        rows = data.present[modality]
        if model is not None and rows.any():
            out[rows] = model.predict_proba(data.x[modality][rows])[:, 1]
        return out

    def usable(self, modality: str) -> bool:
        return self.models.get(modality) is not None


class LateFusion(FusionStrategy):
    name = "late"

    def __init__(self, folds: int = 5, augment_copies: int = 4) -> None:
        self.folds = folds
        self.augment_copies = augment_copies
        self.modality_dropout = 0.0
        self.base = ModalityModels()
        self.stacker: LogisticRegression | None = None
        self.calibrator: LogisticRegression | None = None
        self.modalities: tuple[str, ...] = ()

    def _stack_inputs(self, logits: dict[str, np.ndarray], data: ModalityData) -> np.ndarray:
        columns = []
        for modality in self.modalities:
            present = data.present[modality].astype(float)
            columns += [logits[modality] * present, present]
        return np.stack(columns, axis=1)

    def _oof_logits(self, data: ModalityData, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
        """Out-of-fold predictions of each modality model on the training patients."""
        logits = {m: np.zeros(data.n) for m in self.modalities}
        splitter = StratifiedKFold(self.folds, shuffle=True, random_state=seed)
        for fit_idx, held_idx in splitter.split(np.zeros(data.n), y):
            fold = ModalityModels().fit(data.subset(fit_idx), y[fit_idx])
            held = data.subset(held_idx)
            for modality in self.modalities:
                logits[modality][held_idx] = _logit(fold.predict(held, modality))
        return logits

    def fit(self, ctx: FitContext) -> LateFusion:
        self.base.fit(ctx.train, ctx.y_train)
        self.modalities = tuple(m for m in ctx.train.modalities if self.base.usable(m))
        oof = self._oof_logits(ctx.train, ctx.y_train, ctx.seed)
        self.modality_dropout = ctx.modality_dropout
        inputs, labels = [self._stack_inputs(oof, ctx.train)], [ctx.y_train]
        rng = np.random.default_rng(ctx.seed)
        for _ in range(self.augment_copies if ctx.modality_dropout > 0 else 0):
            hidden = self._hide(ctx.train, rng, ctx.modality_dropout)
            inputs.append(self._stack_inputs(oof, hidden))
            labels.append(ctx.y_train)
        self.stacker = LogisticRegression(C=1.0, max_iter=5000).fit(
            np.concatenate(inputs), np.concatenate(labels)
        )
        raw = self._stacked_logit(ctx.valid)
        self.calibrator = LogisticRegression(C=1e4, max_iter=5000).fit(raw[:, None], ctx.y_valid)
        return self

    def _hide(self, data: ModalityData, rng: np.random.Generator, rate: float) -> ModalityData:
        """A copy with each present modality hidden with probability ``rate`` (never all)."""
        present = np.stack([data.present[m] for m in self.modalities], axis=1)
        keep = present & (rng.random(present.shape) >= rate)
        emptied = ~keep.any(axis=1) & present.any(axis=1)
        for row in np.flatnonzero(emptied):  # restore one present modality at random
            keep[row, rng.choice(np.flatnonzero(present[row]))] = True
        for j, modality in enumerate(self.modalities):
            data = data.mask(modality, keep[:, j])
        return data

    def _stacked_logit(self, data: ModalityData) -> np.ndarray:
        assert self.stacker is not None
        logits = {m: _logit(self.base.predict(data, m)) for m in self.modalities}
        return self.stacker.decision_function(self._stack_inputs(logits, data))

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        if self.stacker is None or self.calibrator is None:
            raise RuntimeError("late fusion is not fitted")
        return self.calibrator.predict_proba(self._stacked_logit(data)[:, None])[:, 1]

    def stack_weights(self) -> dict[str, float]:
        """Learned weight of each modality's logit (how much the combiner trusts it)."""
        assert self.stacker is not None
        coef = self.stacker.coef_[0]
        return {m: float(coef[2 * i]) for i, m in enumerate(self.modalities)}

    def params(self) -> dict[str, object]:
        return {
            "base_estimator": "logistic",
            "base_C": C_BASE,
            "stack_folds": self.folds,
            "calibration": "platt-on-validation",
            "stacker_augment_copies": self.augment_copies,
            "modality_dropout": self.modality_dropout,
            "modalities": ",".join(self.modalities),
        }
