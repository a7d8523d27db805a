"""`mmlake generate` as a user runs it: layout, determinism, idempotent re-runs, safety."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmlake.cli import app
from mmlake.generate.cohort import MODALITIES

runner = CliRunner()


def _generate(out: Path, *args: str) -> None:
    result = runner.invoke(app, ["generate", "--out", str(out), "--quiet", *args])
    assert result.exit_code == 0, result.output


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_manifest(tmp_path: Path) -> None:
    _generate(tmp_path, "--patients", "30", "--seed", "3", "--dirty-rate", "0.05")
    for folder in (*MODALITIES, "_truth"):
        assert (tmp_path / folder).is_dir(), folder
    manifest = json.loads((tmp_path / "_truth" / "manifest.json").read_text())
    assert manifest["patients"] == 30
    assert manifest["seed"] == 3
    assert manifest["patients_with_modality"]["ehr"] == 30
    assert set(manifest["counts"]) == set(MODALITIES)
    assert sum(manifest["dirty_records"].values()) > 0


def test_same_seed_same_bytes_different_seed_different_data(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _generate(a, "--patients", "25", "--seed", "11")
    _generate(b, "--patients", "25", "--seed", "11")
    _generate(c, "--patients", "25", "--seed", "12")
    assert _digest(a) == _digest(b)
    digest_c = _digest(c)
    common = set(_digest(a)) & set(digest_c)
    assert any(_digest(a)[k] != digest_c[k] for k in common)
    assert _digest(a)["ehr/Patient.000.ndjson"] != digest_c.get("ehr/Patient.000.ndjson")


def test_rerun_into_the_same_folder_is_idempotent(tmp_path: Path) -> None:
    _generate(tmp_path, "--patients", "40", "--seed", "5")
    first = _digest(tmp_path)
    _generate(tmp_path, "--patients", "10", "--seed", "5")
    _generate(tmp_path, "--patients", "40", "--seed", "5")
    assert _digest(tmp_path) == first


def test_refuses_to_clear_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--patients", "5", "-q"])
    assert result.exit_code != 0
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_skipping_a_modality_is_honest_in_truth(tmp_path: Path) -> None:
    _generate(tmp_path, "--patients", "20", "--modalities", "ehr,notes")
    manifest = json.loads((tmp_path / "_truth" / "manifest.json").read_text())
    assert manifest["patients_with_modality"]["imaging"] == 0
    assert not any((tmp_path / "imaging").rglob("*.dcm"))


@pytest.mark.parametrize("bad", [["--patients", "0"], ["--modalities", "ehr,xray"]])
def test_bad_arguments_are_rejected_clearly(tmp_path: Path, bad: list[str]) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), "-q", *bad])
    assert result.exit_code == 2
