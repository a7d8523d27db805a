"""Early fusion: one model over every modality's features side by side.

The simplest and most common strategy: absent modalities are imputed (zeros after
standardisation, i.e. the training mean) and announced by availability indicators, then one
gradient-boosted model (LightGBM) learns from the concatenation. A logistic regression on the
same matrix is the linear baseline. Neither ever sees a missingness pattern it was not trained
on as "missing": that is what the robustness scenarios expose.
"""

from __future__ import annotations

from typing import Literal

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ml.features import ModalityData
from ml.strategies.base import FitContext, FusionStrategy

Estimator = Literal["lightgbm", "logistic"]


class EarlyFusion(FusionStrategy):
    def __init__(self, estimator: Estimator = "lightgbm", threads: int = 1) -> None:
        self.estimator = estimator
        self.name = "early" if estimator == "lightgbm" else "early:logistic"
        self.threads = threads
        self.model: lgb.LGBMClassifier | LogisticRegression | None = None
        self.best_iteration: int | None = None

    def fit(self, ctx: FitContext) -> EarlyFusion:
        x_train, x_valid = ctx.train.concatenated(), ctx.valid.concatenated()
        if self.estimator == "logistic":
            self.model = LogisticRegression(C=0.3, max_iter=5000).fit(x_train, ctx.y_train)
            return self
        # Small trees, strong subsampling and early stopping on validation: a few hundred
        # patients do not support deep interactions; determinism needs fixed threads.
        self.model = lgb.LGBMClassifier(
            n_estimators=600,
            learning_rate=0.03,
            num_leaves=8,
            min_child_samples=15,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.7,
            reg_lambda=1.0,
            random_state=ctx.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=self.threads,
            verbose=-1,
        )
        self.model.fit(
            x_train,
            ctx.y_train,
            eval_X=(x_valid,),
            eval_y=(ctx.y_valid,),
            eval_metric="auc",
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )
        self.best_iteration = int(self.model.best_iteration_ or self.model.n_estimators)
        return self

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return self.model.predict_proba(data.concatenated())[:, 1]

    def params(self) -> dict[str, object]:
        if self.estimator == "logistic":
            return {"estimator": "logistic", "C": 0.3}
        assert isinstance(self.model, lgb.LGBMClassifier)
        params = {k: v for k, v in self.model.get_params().items() if k != "verbose"}
        return {"estimator": "lightgbm", "best_iteration": self.best_iteration, **params}


def validation_auroc(model: FusionStrategy, data: ModalityData, y: np.ndarray) -> float:
    return float(roc_auc_score(y, model.predict_proba(data)))
