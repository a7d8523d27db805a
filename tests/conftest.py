"""Fixtures shared by the whole suite: the repository root and a throwaway lakehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository (and dbt project) root."""
    return REPO_ROOT


@pytest.fixture
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty lakehouse root exported as LAKEHOUSE_ROOT, so nothing lands in the repo."""
    root = tmp_path / "lakehouse"
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    return root
