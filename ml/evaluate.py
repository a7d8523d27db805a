"""`mmlake evaluate`: score a training run's strategies on its held-out test patients.

The test patients are those of the run's own ``split.csv`` at the run's own gold version, so an
evaluation can be repeated at any later time with identical inputs. Results go to
``<lakehouse>/reports/evaluation.json`` (the stable interface), PNG plots next to it, the
model card, and an MLflow run (``mmlake.kind=evaluate``) linked to the training run.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml import tracking
from ml.data import KEY, LABEL, MLInputError, load_gold
from ml.train import load_bundle, metric_key


@dataclass(frozen=True)
class EvaluateResult:
    json_path: Path
    model_card: Path
    plots: dict[str, Path]
    run_id: str
    train_run_id: str


def training_run(lakehouse: Path, run_id: str | None):
    import mlflow
    from mlflow.exceptions import MlflowException

    tracking.configure(lakehouse)
    if run_id is None:
        run = tracking.latest_run(lakehouse, "train")
        if run is None:
            raise MLInputError("no training run in the MLflow store: run `mmlake train` first")
        return run
    try:
        run = mlflow.get_run(run_id)
    except MlflowException as exc:
        raise MLInputError(f"unknown MLflow run {run_id!r}") from exc
    if run.data.tags.get(tracking.TAG_KIND) != "train":
        raise MLInputError(f"run {run_id} is not a training run")
    return run


def evaluate(lakehouse: Path, run_id: str | None = None, n_bootstrap: int = 200) -> EvaluateResult:
    import mlflow

    from ml.evaluation import evaluate_models
    from ml.model_card import write_model_card

    run = training_run(lakehouse, run_id)
    train_id = run.info.run_id
    gold_version = int(run.data.tags[tracking.TAG_GOLD_VERSION])
    bundle = load_bundle(train_id)
    snapshot = load_gold(lakehouse, gold_version)
    split_csv = mlflow.artifacts.load_text(f"runs:/{train_id}/split.csv")
    split = pd.read_csv(io.StringIO(split_csv), dtype=str).set_index(KEY)["split"]
    frame = snapshot.labelled()
    test_frame = frame[frame[KEY].isin(split.index[split == "test"])]
    test_frame = test_frame.sort_values(KEY).reset_index(drop=True)
    if test_frame.empty:
        raise MLInputError(f"the test patients of run {train_id} are not in gold v{gold_version}")
    space = bundle["space"]
    test = space.transform(test_frame)
    y = test_frame[LABEL].astype(int).to_numpy()
    out_dir = tracking.reports_dir(lakehouse)
    report = evaluate_models(
        models=bundle["strategies"],
        test=test,
        y=y,
        subgroups=snapshot.subgroups,
        cohort_patterns=snapshot.frame["modality_pattern"],
        out_dir=out_dir,
        gold_versions=snapshot.versions,
        seed=int(bundle.get("seed", 0)),
        n_bootstrap=n_bootstrap,
    )
    experiment_id = tracking.configure(lakehouse)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {train_id[:8]}") as ev:
        mlflow.set_tags(
            {
                tracking.TAG_KIND: "evaluate",
                tracking.TAG_PARENT: train_id,
                tracking.TAG_GOLD_VERSION: str(gold_version),
                tracking.TAG_GOLD_VERSIONS: json.dumps(snapshot.versions, sort_keys=True),
            }
        )
        for row in report.json["results"]:
            if row.get("auroc") is not None:
                key = f"test_auroc.{metric_key(row['strategy'])}.{metric_key(row['scenario'])}"
                mlflow.log_metric(key, row["auroc"])
        mlflow.log_artifact(str(report.json_path))
        for plot in report.plots.values():
            mlflow.log_artifact(str(plot), "plots")
        card = write_model_card(lakehouse, run, report.json, out_dir / "model_card.md")
        mlflow.log_artifact(str(card))
        evaluate_id = ev.info.run_id
    return EvaluateResult(report.json_path, card, dict(report.plots), evaluate_id, train_id)
