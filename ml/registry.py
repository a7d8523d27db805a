"""Servable models: one pyfunc per fusion strategy, the champion registered with an alias.

Each fusion strategy is logged in a nested run as an MLflow pyfunc (``ml.serving.FusionModel``)
with an explicit signature and an input example taken from gold, so ``mmlake score`` can check a
feature table against the model before predicting. The ``ml`` package travels with the model
(``code_paths``) so it loads where this repository is not installed (e.g. a Databricks job).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ml import tracking
from ml.features import FeatureSpace
from ml.serving import SCORE_COLUMN, FusionModel, column_kinds, prepare_input
from ml.strategies.base import FusionStrategy

if TYPE_CHECKING:
    from ml.train import Prepared, TrainConfig, TrainResult

FUSION_LOGGED = ("early", "intermediate", "late", "attention")


def requirements() -> list[str]:
    """Pinned runtime requirements of the served model (no slow environment inference)."""
    from importlib.metadata import version

    packages = ["mlflow", "scikit-learn", "lightgbm", "pandas", "numpy", "cloudpickle"]
    pins = [f"{p}=={version(p)}" for p in packages]
    return [*pins, f"torch=={version('torch').split('+')[0]}"]


def model_signature(space: FeatureSpace):
    """Explicit signature: one type per column, independent of nulls in the example rows."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec(kind, name, required=False) for name, kind in column_kinds(space).items()]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", SCORE_COLUMN)]))


def log_fusion_models(
    fitted: dict[str, FusionStrategy],
    space: FeatureSpace,
    prepared: Prepared,
    experiment_id: str,
    result: TrainResult,
    config: TrainConfig,
) -> str | None:
    """Log each fusion strategy as a pyfunc in a child run; register the champion."""
    import mlflow

    example = prepare_input(prepared.part("train").head(5), space)
    champion_uri = None
    for name in FUSION_LOGGED:
        if name not in fitted:
            continue
        model = FusionModel(space, fitted[name])
        signature = model_signature(space)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{name} gold v{prepared.snapshot.gold_version}",
            nested=True,
        ):
            mlflow.set_tags(
                {
                    tracking.TAG_KIND: "strategy",
                    tracking.TAG_STRATEGY: name,
                    tracking.TAG_PARENT: result.run_id,
                    tracking.TAG_GOLD_VERSION: str(prepared.snapshot.gold_version),
                }
            )
            mlflow.log_params({k: _param(v) for k, v in fitted[name].params().items()})
            mlflow.log_metric("valid_auroc", result.valid_auroc[name])
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=signature,
                input_example=example,
                pip_requirements=requirements(),
                code_paths=[str(Path(__file__).resolve().parent)],
            )
            if name == result.champion:
                champion_uri = info.model_uri
    if champion_uri is None or not config.register:
        return None
    return register_champion(champion_uri, result, config)


def register_champion(model_uri: str, result: TrainResult, config: TrainConfig) -> str:
    import mlflow
    from mlflow import MlflowClient

    name = tracking.registered_model_name()
    version = mlflow.register_model(
        model_uri,
        name,
        tags={
            "strategy": str(result.champion),
            "train_run_id": result.run_id,
            "gold_version": str(result.gold_versions.get("patient_multimodal")),
            "valid_auroc": f"{result.valid_auroc[str(result.champion)]:.4f}",
            "modality_dropout": str(config.modality_dropout),
        },
    )
    client = MlflowClient()
    client.set_registered_model_alias(name, tracking.CHAMPION_ALIAS, version.version)
    client.update_registered_model(
        name,
        description=(
            "Risk of disease progression within 12 months of an oncology diagnosis from "
            "whichever of EHR, genomics, imaging, notes and wearables a patient has. "
            f"Alias '{tracking.CHAMPION_ALIAS}' = best validation AUROC of the fusion strategies."
        ),
    )
    return str(version.version)


def _param(value: object) -> object:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


__all__ = ["SCORE_COLUMN", "log_fusion_models", "register_champion", "requirements"]
