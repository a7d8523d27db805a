"""Bad input to the ML commands: one line, a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from mmlake.cli import app
from mmlake.delta import write_delta

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_store(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MMLAKE_UC_MODEL_NAME"):
        monkeypatch.delenv(name, raising=False)


def _gold(lakehouse: Path, labels: list[int | None], extra: dict | None = None) -> None:
    """A small patient_multimodal shaped like the real one (keys, label, flags, features)."""
    n = len(labels)
    rng = np.random.default_rng(0)
    columns = {
        "patient_key": [f"p{i:04d}" for i in range(n)],
        "cancer_type": ["nsclc"] * n,
        "label": pa.array(labels, pa.int32()),
        "has_ehr": [True] * n,
        "has_imaging": [bool(i % 2) for i in range(n)],
        "clinical__ecog": pa.array(rng.integers(0, 4, n), pa.int32()),
        "clinical__ldh_u_l": rng.normal(250, 40, n),
        "imaging__lesion_volume_ml": [
            float(v) if i % 2 else None for i, v in enumerate(rng.gamma(2, 5, n))
        ],
        "modality_pattern": ["ehr+imaging" if i % 2 else "ehr" for i in range(n)],
    }
    columns.update(extra or {})
    write_delta(lakehouse / "gold" / "patient_multimodal", pa.table(columns), mode="overwrite")


def _fails_cleanly(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert message in lines[0], lines[0]


def test_missing_gold_table(tmp_path: Path) -> None:
    _fails_cleanly(
        ["train", "--lakehouse", str(tmp_path)], "gold table patient_multimodal not found"
    )


def test_empty_gold_table(tmp_path: Path) -> None:
    _gold(tmp_path, [0, 1])
    empty = pa.table({"patient_key": pa.array([], pa.string()), "label": pa.array([], pa.int32())})
    write_delta(
        tmp_path / "gold" / "patient_multimodal", empty, mode="overwrite", schema_mode="overwrite"
    )
    _fails_cleanly(["train", "--lakehouse", str(tmp_path)], "is empty at version 1")


def test_gold_version_that_does_not_exist(tmp_path: Path) -> None:
    _gold(tmp_path, [0, 1] * 40)
    _fails_cleanly(
        ["train", "--gold-version", "7", "--lakehouse", str(tmp_path)],
        "gold version 7 of patient_multimodal does not exist (versions 0..0",
    )


def test_label_with_one_class_only(tmp_path: Path) -> None:
    _gold(tmp_path, [0] * 80)
    _fails_cleanly(["train", "--lakehouse", str(tmp_path)], "has one class only")


def test_too_few_labelled_patients(tmp_path: Path) -> None:
    _gold(tmp_path, [0, 1] * 10 + [None] * 60)
    _fails_cleanly(["train", "--lakehouse", str(tmp_path)], "20 labelled patients")


def test_evaluate_and_score_before_any_training(tmp_path: Path) -> None:
    _gold(tmp_path, [0, 1] * 40)
    _fails_cleanly(["evaluate", "--lakehouse", str(tmp_path)], "no training run")
    _fails_cleanly(["score", "--lakehouse", str(tmp_path)], "run `mmlake train` first")
    _fails_cleanly(["drift", "--lakehouse", str(tmp_path)], "mmlake train")


@pytest.mark.slow
def test_score_refuses_a_feature_table_that_does_not_match_the_model(
    ml_cohort, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gold without a column the registered champion was trained on (a schema change)."""
    from ml.data import load_gold

    frame = load_gold(ml_cohort.lakehouse).frame.drop(columns=["clinical__ldh_u_l"])
    write_delta(
        tmp_path / "gold" / "patient_multimodal", pa.Table.from_pandas(frame, preserve_index=False)
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ml_cohort.lakehouse}/mlflow.db")
    _fails_cleanly(
        ["score", "--lakehouse", str(tmp_path)],
        "does not match the registered model's signature: clinical__ldh_u_l missing",
    )
