"""A cohort large enough for the fusion claims: generate -> ingest -> dbt build, once per session.

The model tests' 120-patient cohort is too small to compare strategies (a 24-patient test set
cannot separate two AUROCs), so the ML tests build their own. The signal is the generator's
planted latent model (docs/synthetic_cohort.md), spread over every modality.

MMLAKE_TEST_ML_LAKEHOUSE=DIR reuses DIR across sessions (generated, ingested and built on the
first run) for quicker iteration; CI never sets it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml.cli import quiet_mlflow
from mmlake.dbt_runner import run_dbt
from mmlake.delta import delta_version
from mmlake.generate.runner import GenerationConfig, generate_cohort
from mmlake.pseudonym import KEY_FILE
from python_ingest.runner import ingest_sources

PATIENTS = 1000
SEED = 7
# A fixed pseudonym key: patient keys decide the split order, so a fixed key makes the ML
# results identical from run to run (a per-lakehouse random key would reshuffle the splits).
PSEUDONYM_KEY = "mmlake-ml-tests-" + "0" * 48


@dataclass(frozen=True)
class Cohort:
    raw: Path
    lakehouse: Path

    @property
    def truth(self) -> Path:
        return self.raw / "_truth"


@pytest.fixture(scope="session")
def ml_cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    reuse = os.environ.get("MMLAKE_TEST_ML_LAKEHOUSE")
    base = Path(reuse) if reuse else tmp_path_factory.mktemp("ml_cohort")
    cohort = Cohort(raw=base / "raw", lakehouse=base / "lakehouse")
    if delta_version(cohort.lakehouse / "gold" / "patient_multimodal") is None:
        key_file = cohort.lakehouse / KEY_FILE
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(PSEUDONYM_KEY + "\n", encoding="ascii")
        key_file.chmod(0o600)
        generate_cohort(GenerationConfig(patients=PATIENTS, seed=SEED), cohort.raw)
        ingest_sources(cohort.raw, "all", cohort.lakehouse, progress=False)
        run_dbt(["build"], target="local", lakehouse=cohort.lakehouse)
    return cohort


@pytest.fixture(scope="session")
def mlflow_env(ml_cohort: Cohort) -> None:
    """Use the lakehouse's own MLflow store whatever the environment says."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MMLAKE_UC_MODEL_NAME"):
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def trained(ml_cohort: Cohort, mlflow_env: None):
    """One training run of every strategy (the run the other ML tests inspect)."""
    from ml.train import TrainConfig, train

    with quiet_mlflow():
        return train(ml_cohort.lakehouse, TrainConfig(seed=0))


@pytest.fixture(scope="session")
def evaluated(ml_cohort: Cohort, trained):
    from ml.evaluate import evaluate

    with quiet_mlflow():
        return evaluate(ml_cohort.lakehouse, trained.run_id)
