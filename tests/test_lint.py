"""Style is part of the build: ruff for Python, sqlfluff (the repo's .sqlfluff) for dbt SQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mmlake.paths import project_root

BIN = Path(sys.executable).parent


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=project_root(), capture_output=True, text=True, timeout=900, env=env
    )


def test_ruff_check_and_format() -> None:
    check = _run(str(BIN / "ruff"), "check", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_sqlfluff_lint_models(tmp_path: Path) -> None:
    """The dbt templater compiles each node on the local target, against a scratch lakehouse."""
    env = {**os.environ, "LAKEHOUSE_ROOT": str(tmp_path / "lakehouse")}
    env.pop("MMLAKE_TARGET", None)
    lint = _run(
        str(BIN / "sqlfluff"), "lint", "models", "data_tests", "--disable-progress-bar", env=env
    )
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]
