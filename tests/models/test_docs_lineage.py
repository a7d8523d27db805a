"""What data stewards read: docs on every gold model and column, contracts, lineage, exposures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.models.conftest import Built

MODALITIES = ("ehr", "genomics", "imaging", "notes", "wearables")
FEATURES = {
    "ehr": "features_clinical",
    "genomics": "features_genomics",
    "imaging": "features_imaging",
    "notes": "features_notes",
    "wearables": "features_wearables",
}


@pytest.fixture(scope="module")
def manifest(built: Built) -> dict:
    """The manifest of the shared build; `dbt docs generate` ran right after it (conftest)."""
    target = built.lakehouse / "dbt" / "target"
    assert (target / "catalog.json").is_file() and (target / "index.html").is_file()
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


def _models(manifest: dict, layer: str) -> Iterator[dict]:
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["schema"] == layer:
            yield node


def test_every_gold_model_has_docs_and_an_enforced_contract(manifest: dict) -> None:
    gold = list(_models(manifest, "gold"))
    assert len(gold) >= 8
    problems = []
    for node in gold:
        if not node["description"].strip():
            problems.append(f"{node['name']}: no description")
        if not node["config"]["contract"]["enforced"]:
            problems.append(f"{node['name']}: contract not enforced")
        for column in node["columns"].values():
            if not column["description"].strip():
                problems.append(f"{node['name']}.{column['name']}: no description")
            if not column.get("data_type"):
                problems.append(f"{node['name']}.{column['name']}: no data_type")
    assert not problems, "\n".join(problems)


def test_every_silver_model_is_described(manifest: dict) -> None:
    undocumented = [n["name"] for n in _models(manifest, "silver") if not n["description"].strip()]
    assert not undocumented


def _ancestors(manifest: dict, unique_id: str) -> set[str]:
    parents = manifest["parent_map"]
    seen: set[str] = set()
    stack = [unique_id]
    while stack:
        for parent in parents.get(stack.pop(), []):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


@pytest.mark.parametrize("modality", MODALITIES)
def test_lineage_reads_bronze_silver_gold_per_modality(manifest: dict, modality: str) -> None:
    unique_id = f"model.multimodal_lakehouse.{FEATURES[modality]}"
    ancestors = _ancestors(manifest, unique_id)
    sources = {a for a in ancestors if a.startswith(f"source.multimodal_lakehouse.{modality}.")}
    silver = {
        a
        for a in ancestors
        if a.startswith("model.")
        and manifest["nodes"][a]["schema"] == "silver"
        and f"/silver/{modality}/" in manifest["nodes"][a]["original_file_path"]
    }
    assert sources, f"{FEATURES[modality]} does not trace back to a bronze {modality} source"
    assert silver, f"{FEATURES[modality]} does not go through silver/{modality}"


def test_patient_multimodal_joins_every_feature_group(manifest: dict) -> None:
    ancestors = _ancestors(manifest, "model.multimodal_lakehouse.patient_multimodal")
    for name in (*FEATURES.values(), "outcomes"):
        assert f"model.multimodal_lakehouse.{name}" in ancestors


def test_exposures_for_training_and_tumor_board(manifest: dict) -> None:
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert {"fusion_training_set", "tumor_board_view"} <= set(exposures)
    for exposure in exposures.values():
        assert exposure["description"].strip() and exposure["owner"]
        assert exposure["depends_on"]["nodes"]
