"""The README's first command, `make demo`, end to end on a small cohort."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mmlake.paths import project_root


@pytest.mark.slow
def test_make_demo_runs_end_to_end(tmp_path: Path) -> None:
    lakehouse, raw = tmp_path / "lakehouse", tmp_path / "raw"
    env = {**os.environ, "LAKEHOUSE_ROOT": str(lakehouse), "MMLAKE_RAW_DIR": str(raw)}
    completed = subprocess.run(
        ["make", "--no-print-directory", "demo", "PATIENTS=80", "SEED=7"],
        cwd=project_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert (raw / "_truth" / "manifest.json").is_file()
    assert any((raw / "ehr").glob("Patient.*.ndjson"))
    gold_logs = list((lakehouse / "gold").glob("*/_delta_log/00000000000000000000.json"))
    assert gold_logs, "the demo must publish gold models as Delta tables"
    assert "Demo: what ran" in completed.stdout
    # The ML stages ran on the gold the demo built: evaluation report, risk scores, MLflow.
    assert (lakehouse / "reports" / "evaluation.json").is_file()
    assert (lakehouse / "gold" / "risk_scores" / "_delta_log").is_dir()
    assert (lakehouse / "mlflow.db").is_file()
    # The clinician-facing outputs: similar cases and a sample of tumor-board pages.
    assert (lakehouse / "gold" / "similar_cases" / "_delta_log").is_dir()
    board = lakehouse / "reports" / "tumor_board"
    assert (board / "index.html").is_file() and len(list(board.glob("*.html"))) > 1
    # Nothing leaks into the repository (Spark/dbt artefacts, default data folders).
    for leak in ("metastore_db", "derby.log", "spark-warehouse"):
        assert not (project_root() / leak).exists(), leak
