"""Style is part of the build: ruff for Python, sqlfluff (the repo's .sqlfluff) for dbt SQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mmlake.paths import project_root

BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=project_root(), capture_output=True, text=True, timeout=600)


def test_ruff_check_and_format() -> None:
    check = _run(str(BIN / "ruff"), "check", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_sqlfluff_lint_models() -> None:
    lint = _run(str(BIN / "sqlfluff"), "lint", "models", "macros", "--disable-progress-bar")
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]
