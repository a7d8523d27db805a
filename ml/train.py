"""`mmlake train`: fit the fusion strategies and baselines on gold, track everything in MLflow.

One training run (tag ``mmlake.kind=train``) records the gold versions and dbt manifest digest
it read, the patient split, the fitted feature space and every fitted strategy (``fitted.pkl``,
which ``mmlake evaluate`` scores on the held-out test patients). Each fusion strategy also gets
a nested run with its parameters, validation metrics and a servable pyfunc model with signature
and input example. The strategy with the best validation AUROC under the cohort's own
missingness is registered and receives the ``champion`` alias that ``mmlake score`` serves; the
test split is never used to choose.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml import tracking
from ml.data import KEY, LABEL, GoldSnapshot, MLInputError, gold_path, load_gold
from ml.features import FeatureSpace
from ml.split import assert_no_leakage, split_patients
from ml.strategies.base import FitContext, FusionStrategy

FUSION = ("early", "intermediate", "late", "attention")
MIN_PATIENTS = 50
BUNDLE = "fitted.pkl"


@dataclass(frozen=True)
class TrainConfig:
    strategies: tuple[str, ...] = FUSION
    gold_version: int | None = None
    seed: int = 0
    modality_dropout: float = 0.3
    register: bool = True  # False: log everything but leave the registry's champion alone


@dataclass
class TrainResult:
    run_id: str
    gold_versions: dict[str, int]
    valid_auroc: dict[str, float]
    champion: str | None = None
    model_version: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def make_strategies(names: tuple[str, ...], modalities: tuple[str, ...]) -> list[FusionStrategy]:
    """The requested fusion strategies, then the baselines every report compares them with."""
    from ml.strategies.baselines import PerCombination, SingleModality
    from ml.strategies.early import EarlyFusion
    from ml.strategies.late import LateFusion

    chosen: list[FusionStrategy] = []
    if "early" in names:
        chosen += [EarlyFusion("lightgbm"), EarlyFusion("logistic")]
    if "intermediate" in names:
        from ml.strategies.neural import IntermediateFusion

        chosen.append(IntermediateFusion())
    if "late" in names:
        chosen.append(LateFusion())
    if "attention" in names:
        from ml.strategies.neural import AttentionFusion

        chosen.append(AttentionFusion())
    chosen += [SingleModality(m) for m in modalities]
    chosen.append(PerCombination())
    return chosen


def metric_key(name: str) -> str:
    """MLflow metric names allow no ':' (single:ehr -> single_ehr)."""
    return re.sub(r"[^0-9A-Za-z_./ -]", "_", name)


@dataclass
class Prepared:
    """The labelled cohort at one gold version, split and transformed."""

    snapshot: GoldSnapshot
    frame: pd.DataFrame  # labelled rows sorted by patient_key
    split: pd.Series  # patient_key -> train/valid/test
    space: FeatureSpace

    def part(self, name: str) -> pd.DataFrame:
        keys = self.split.index[self.split == name]
        return self.frame[self.frame[KEY].isin(keys)].reset_index(drop=True)

    def labels(self, name: str) -> np.ndarray:
        return self.part(name)[LABEL].astype(int).to_numpy()


def prepare(lakehouse: Path, gold_version: int | None, seed: int) -> Prepared:
    snapshot = load_gold(lakehouse, gold_version)
    frame = snapshot.labelled().sort_values(KEY).reset_index(drop=True)
    if len(frame) < MIN_PATIENTS:
        raise MLInputError(
            f"gold patient_multimodal v{snapshot.gold_version} has {len(frame)} labelled "
            f"patients; training needs at least {MIN_PATIENTS}"
        )
    split = split_patients(frame, seed)
    train_frame = frame[frame[KEY].isin(split.index[split == "train"])]
    space = FeatureSpace.fit(train_frame)
    assert_no_leakage(space, train_frame)
    return Prepared(snapshot, frame, split, space)


def train(lakehouse: Path, config: TrainConfig) -> TrainResult:
    import cloudpickle
    import mlflow

    prepared = prepare(lakehouse, config.gold_version, config.seed)
    space = prepared.space
    train_data = space.transform(prepared.part("train"))
    valid_data = space.transform(prepared.part("valid"))
    ctx = FitContext(
        train_data,
        prepared.labels("train"),
        valid_data,
        prepared.labels("valid"),
        seed=config.seed,
        modality_dropout=config.modality_dropout,
    )
    snapshot = prepared.snapshot
    experiment_id = tracking.configure(lakehouse)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"train gold v{snapshot.gold_version}"
    ) as parent:
        _log_inputs(prepared, config)
        result = TrainResult(parent.info.run_id, dict(snapshot.versions), {})
        fitted: dict[str, FusionStrategy] = {}
        for strategy in make_strategies(config.strategies, space.modalities):
            started = time.perf_counter()
            strategy.fit(ctx)
            result.seconds[strategy.name] = time.perf_counter() - started
            fitted[strategy.name] = strategy
            auroc = _auroc(strategy, valid_data, ctx.y_valid)
            result.valid_auroc[strategy.name] = auroc
            mlflow.log_metric(f"valid_auroc.{metric_key(strategy.name)}", auroc)
            mlflow.log_metric(
                f"fit_seconds.{metric_key(strategy.name)}", result.seconds[strategy.name]
            )
        bundle = {"space": space, "strategies": fitted, "seed": config.seed}
        mlflow.log_dict(
            {"valid_auroc": result.valid_auroc, "fit_seconds": result.seconds},
            "validation.json",
        )
        _log_bytes(cloudpickle.dumps(bundle), BUNDLE)
        from ml.attention_log import log_attention

        log_attention(fitted, space, prepared.frame)
        fusion = [s for s in fitted if s in FUSION]
        if fusion:
            result.champion = max(fusion, key=lambda s: result.valid_auroc[s])
            mlflow.set_tag("mmlake.champion", result.champion)
        from ml.registry import log_fusion_models

        result.model_version = log_fusion_models(
            fitted, space, prepared, experiment_id, result, config
        )
    return result


def _auroc(strategy: FusionStrategy, data, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, strategy.predict_proba(data)))


def _log_inputs(prepared: Prepared, config: TrainConfig) -> None:
    """Params, tags and dataset inputs that make the run reproducible."""
    import mlflow

    snapshot = prepared.snapshot
    counts = prepared.split.value_counts().to_dict()
    mlflow.set_tags(
        {
            tracking.TAG_KIND: "train",
            tracking.TAG_GOLD_VERSION: str(snapshot.gold_version),
            tracking.TAG_GOLD_VERSIONS: json.dumps(snapshot.versions, sort_keys=True),
            tracking.TAG_MANIFEST: snapshot.manifest_digest or "",
        }
    )
    mlflow.log_params(
        {
            "strategies": ",".join(config.strategies),
            "seed": config.seed,
            "modality_dropout": config.modality_dropout,
            "gold_version": snapshot.gold_version,
            "n_train": counts.get("train", 0),
            "n_valid": counts.get("valid", 0),
            "n_test": counts.get("test", 0),
            "prevalence": round(float(prepared.frame[LABEL].mean()), 4),
            "modalities": ",".join(prepared.space.modalities),
        }
    )
    for table, version in snapshot.versions.items():
        frame = prepared.frame if table == "patient_multimodal" else snapshot.subgroups
        dataset = mlflow.data.from_pandas(
            frame,
            source=str(gold_path(snapshot.lakehouse, table)),
            name=f"gold.{table}@v{version}",
            targets=LABEL if LABEL in frame.columns else None,
        )
        mlflow.log_input(
            dataset, context="training" if table == "patient_multimodal" else "evaluation"
        )
    split = prepared.split.rename_axis(KEY).reset_index()
    mlflow.log_text(split.to_csv(index=False), "split.csv")
    features = {m: prepared.space.feature_names(m) for m in prepared.space.modalities}
    mlflow.log_dict(features, "feature_space.json")


def _log_bytes(payload: bytes, name: str) -> None:
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(payload)
        mlflow.log_artifact(str(path))


def load_bundle(run_id: str) -> dict[str, object]:
    """The fitted feature space and strategies of a training run."""
    import pickle

    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=BUNDLE)
    with Path(path).open("rb") as handle:
        return pickle.load(handle)
