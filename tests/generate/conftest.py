"""A cohort generated once per test session, shared by the generator's whole-cohort tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmlake.generate.runner import GenerationConfig, GenerationResult, generate_cohort

COHORT_SEED = 20261129
COHORT_PATIENTS = 600


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    """600 patients with every modality; imaging at 32 px keeps the session fast."""
    out = tmp_path_factory.mktemp("cohort")
    config = GenerationConfig(patients=COHORT_PATIENTS, seed=COHORT_SEED, image_size=32)
    return generate_cohort(config, out)


def read_truth(out_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out_dir / "_truth" / name, keep_default_na=False, na_values=[""])
