"""`mmlake score`: the champion model scores every patient of gold into gold ``risk_scores``.

Each row says which model (name, registered version, strategy) produced the score from which
gold version and which modalities the patient had, so a reviewer can tell a score built on five
modalities from one built on the EHR alone. Re-scoring the same gold version with the same model
version replaces its rows (one Delta commit), so the job is idempotent; other model or gold
versions stay side by side for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ml import tracking
from ml.data import KEY, MLInputError, load_gold, utc_now
from ml.features import MODALITIES, presence_column
from ml.serving import SCORE_COLUMN, check_schema, prepare_input
from mmlake.delta import is_delta_table, sql_string, write_delta

RISK_SCORES = "risk_scores"

SCHEMA = pa.schema(
    [
        pa.field(KEY, pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("strategy", pa.string()),
        pa.field("train_run_id", pa.string()),
        pa.field("gold_table", pa.string(), nullable=False),
        pa.field("gold_version", pa.int64(), nullable=False),
        pa.field("modalities_present", pa.string(), nullable=False),
        pa.field("n_modalities", pa.int32(), nullable=False),
        pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class ScoreResult:
    path: Path
    rows: int
    model_version: str
    strategy: str | None
    gold_version: int


def _model_version(name: str, version: str | None):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        if version is None:
            return client.get_model_version_by_alias(name, tracking.CHAMPION_ALIAS)
        return client.get_model_version(name, version)
    except MlflowException as exc:
        wanted = f"version {version}" if version else f"alias '{tracking.CHAMPION_ALIAS}'"
        raise MLInputError(
            f"no registered model {name!r} with {wanted}: run `mmlake train` first"
        ) from exc


def modality_patterns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per patient: present modalities joined by '+', and how many."""
    flags = np.stack(
        [
            frame[presence_column(m)].fillna(False).astype(bool).to_numpy()
            if presence_column(m) in frame.columns
            else np.zeros(len(frame), dtype=bool)
            for m in MODALITIES
        ],
        axis=1,
    )
    names = np.array(MODALITIES)
    patterns = np.array(["+".join(names[row]) or "none" for row in flags])
    return patterns, flags.sum(axis=1)


def score_frame(model: object, frame: pd.DataFrame) -> np.ndarray:
    """Scores for gold rows with a loaded pyfunc, after checking them against its signature."""
    check_schema(frame, model.metadata.signature)
    space = model.unwrap_python_model().space
    prepared = prepare_input(frame, space)
    prepared.insert(0, KEY, frame[KEY].astype(str).to_numpy())
    output = model.predict(prepared)
    return np.asarray(output[SCORE_COLUMN], dtype=float)


def score(
    lakehouse: Path, gold_version: int | None = None, model_version: str | None = None
) -> ScoreResult:
    import mlflow

    tracking.configure(lakehouse)
    name = tracking.registered_model_name()
    registered = _model_version(name, model_version)
    snapshot = load_gold(lakehouse, gold_version)
    frame = snapshot.frame.reset_index(drop=True)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{registered.version}")
    scores = score_frame(model, frame)
    patterns, counts = modality_patterns(frame)
    tags = registered.tags or {}
    now = utc_now()
    table = pa.table(
        {
            KEY: frame[KEY].astype(str).to_numpy(),
            "score": scores,
            "model_name": [name] * len(frame),
            "model_version": [str(registered.version)] * len(frame),
            "strategy": [tags.get("strategy")] * len(frame),
            "train_run_id": [tags.get("train_run_id")] * len(frame),
            "gold_table": ["patient_multimodal"] * len(frame),
            "gold_version": [snapshot.gold_version] * len(frame),
            "modalities_present": patterns,
            "n_modalities": counts.astype(np.int32),
            "scored_at": [now] * len(frame),
        },
        schema=SCHEMA,
    )
    path = lakehouse / "gold" / RISK_SCORES
    if is_delta_table(path):
        predicate = (
            f"model_name = {sql_string(name)} and model_version = "
            f"{sql_string(str(registered.version))} and gold_version = {snapshot.gold_version}"
        )
        write_delta(path, table, mode="overwrite", predicate=predicate, schema_mode=None)
    else:
        write_delta(path, table, mode="append", schema_mode=None)
    return ScoreResult(
        path, len(frame), str(registered.version), tags.get("strategy"), snapshot.gold_version
    )
