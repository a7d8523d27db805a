"""The pseudonymisation key: from the environment, else one stable key per lakehouse."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mmlake.pseudonym import ENV_VAR, KEY_FILE, pseudonym_key


def test_lakehouse_key_is_created_once_private_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    first = pseudonym_key(tmp_path)
    assert len(first) == 64 and int(first, 16) >= 0
    assert pseudonym_key(tmp_path) == first
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    other = tmp_path / "other"
    assert pseudonym_key(other) != first, "two lakehouses must not share a key by accident"


def test_environment_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "  team-secret  ")
    assert pseudonym_key(tmp_path) == "team-secret"
    assert not (tmp_path / KEY_FILE).exists()
