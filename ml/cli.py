"""`mmlake train | evaluate | score | drift`: the ML stages on the command line.

Input problems (no gold table, a version that does not exist, one label class, a feature table
that does not match the registered model) print one line and exit 2; they are the user's to
fix, not stack traces to read.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ml.data import MLInputError
from mmlake import paths
from mmlake.console import console, summary_table

LakehouseOpt = Annotated[
    Path | None,
    typer.Option("--lakehouse", help="Lakehouse root. Default: $LAKEHOUSE_ROOT, else ./lakehouse."),
]
GoldVersionOpt = Annotated[
    int | None,
    typer.Option(
        "--gold-version",
        min=0,
        help="Delta version of gold patient_multimodal to read (time travel). Default: latest.",
    ),
]
STRATEGY_CHOICES = ("early", "intermediate", "late", "attention", "all")
T = TypeVar("T")


@contextmanager
def quiet_mlflow():
    """MLflow and its SQL store log migrations and warnings at INFO: keep the terminal clean."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    from mlflow.utils.logging_utils import disable_logging

    disable_logging()  # "Successfully registered model ..." goes through this stream
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _run(action: Callable[[], T]) -> T:
    try:
        with quiet_mlflow():
            return action()
    except MLInputError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from None


def train(
    strategy: Annotated[
        str, typer.Option(help="early | intermediate | late | attention | all.")
    ] = "all",
    gold_version: GoldVersionOpt = None,
    seed: Annotated[int, typer.Option(help="Split and model seed.")] = 0,
    modality_dropout: Annotated[
        float,
        typer.Option(min=0.0, max=0.9, help="Neural strategies: chance of hiding a modality."),
    ] = 0.3,
    register: Annotated[
        bool, typer.Option(help="Register the best strategy and move the 'champion' alias.")
    ] = True,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Train fusion strategies and baselines on gold; register the best as 'champion'."""
    from ml.train import FUSION, TrainConfig
    from ml.train import train as run_train

    if strategy not in STRATEGY_CHOICES:
        raise typer.BadParameter(f"unknown strategy {strategy!r}; choose from {STRATEGY_CHOICES}")
    chosen = FUSION if strategy == "all" else (strategy,)
    root = paths.lakehouse_root(lakehouse)
    config = TrainConfig(chosen, gold_version, seed, modality_dropout, register)
    result = _run(lambda: run_train(root, config))
    rows = [
        (name, round(auroc, 3), round(result.seconds[name], 2))
        for name, auroc in result.valid_auroc.items()
    ]
    summary_table("Validation AUROC", ("strategy", "AUROC", "fit s"), rows)
    registered = (
        f"registered as version {result.model_version}"
        if result.model_version
        else "not registered"
    )
    console.print(
        f"training run {result.run_id} (gold {result.gold_versions}); best strategy "
        f"{result.champion}, {registered}"
    )


def evaluate(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Training run id. Default: the latest.")
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=20, help="Bootstrap resamples for CIs.")] = 200,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Evaluate a training run on its test patients under each missingness scenario."""
    from ml.evaluate import evaluate as run_evaluate

    root = paths.lakehouse_root(lakehouse)
    result = _run(lambda: run_evaluate(root, run_id, bootstrap))
    console.print(f"evaluation: {result.json_path}")
    console.print(f"model card: {result.model_card}")
    for name, plot in sorted(result.plots.items()):
        console.print(f"plot {name}: {plot}")


def score(
    gold_version: GoldVersionOpt = None,
    model_version: Annotated[
        str | None, typer.Option(help="Registered model version. Default: alias 'champion'.")
    ] = None,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Score every gold patient with the registered champion into gold risk_scores (Delta)."""
    from ml.score import score as run_score

    root = paths.lakehouse_root(lakehouse)
    result = _run(lambda: run_score(root, gold_version, model_version))
    console.print(
        f"scored {result.rows:,} patients with model version {result.model_version} "
        f"({result.strategy}) on gold v{result.gold_version} -> {result.path}"
    )


def drift(
    reference: Annotated[
        str | None,
        typer.Option(
            help="Training run id, or version:N for a gold version. Default: latest training run."
        ),
    ] = None,
    current: Annotated[
        int | None, typer.Option(min=0, help="Current gold version. Default: latest.")
    ] = None,
    lakehouse: LakehouseOpt = None,
) -> None:
    """Population stability of features, modality availability and label vs a reference."""
    from ml.drift import run_drift

    root = paths.lakehouse_root(lakehouse)
    result = _run(lambda: run_drift(root, reference, current))
    console.print(result.summary_line(), soft_wrap=True)
    console.print(f"report: {result.paths.html}\njson:   {result.paths.json}")


def register(app: typer.Typer) -> None:
    for command in (train, evaluate, score, drift):
        app.command()(command)
