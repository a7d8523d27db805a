"""Where runs, models and reports are tracked: a real MLflow store inside the lakehouse.

Locally the tracking store is ``sqlite:///<lakehouse>/mlflow.db`` with artifacts under
``<lakehouse>/mlruns`` and the model registry in the same database. On Databricks the same code
logs to the workspace: set ``MLFLOW_TRACKING_URI=databricks`` and
``MLFLOW_REGISTRY_URI=databricks-uc`` (and ``MMLAKE_UC_MODEL_NAME=<catalog>.<schema>.<model>``,
since Unity Catalog names models in three parts). Nothing else changes.
"""

from __future__ import annotations

import os
from pathlib import Path

EXPERIMENT = "multimodal_fusion"
MODEL_NAME = "multimodal_fusion"
CHAMPION_ALIAS = "champion"

# Run tags every consumer relies on (evaluate, score, drift, tumor-board pages).
TAG_KIND = "mmlake.kind"  # train | strategy | evaluate | score | drift
TAG_GOLD_VERSION = "mmlake.gold_version"  # patient_multimodal Delta version read
TAG_GOLD_VERSIONS = "mmlake.gold_versions"  # JSON {table: version}
TAG_MANIFEST = "mmlake.dbt_manifest_sha256"
TAG_STRATEGY = "mmlake.strategy"
TAG_PARENT = "mmlake.train_run_id"  # on strategy/evaluate runs: the training run they belong to


def tracking_uri(lakehouse: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{lakehouse.resolve()}/mlflow.db"


def registry_uri(lakehouse: Path) -> str:
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri(lakehouse)


def registered_model_name() -> str:
    return os.environ.get("MMLAKE_UC_MODEL_NAME") or MODEL_NAME


def configure(lakehouse: Path) -> str:
    """Point MLflow at the lakehouse store; create the experiment; return its id."""
    import mlflow

    user_store = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    before = {v: os.environ.get(v) for v in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri(lakehouse))
    mlflow.set_registry_uri(registry_uri(lakehouse))
    # MLflow exports the URIs to the environment (for its subprocesses); restore the user's own
    # setting, so that a later call for another lakehouse is not mistaken for a user's choice.
    for variable, value in before.items():
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None
    if not user_store:
        artifacts = (lakehouse.resolve() / "mlruns").as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)


def latest_run(lakehouse: Path, kind: str, extra_filter: str = "") -> object | None:
    """The most recent finished run of a kind (an ``mlflow.entities.Run``), or None."""
    import mlflow

    experiment_id = configure(lakehouse)
    query = f"tags.`{TAG_KIND}` = '{kind}' and attributes.status = 'FINISHED'"
    if extra_filter:
        query += f" and {extra_filter}"
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=query,
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def reports_dir(lakehouse: Path) -> Path:
    path = lakehouse / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path
