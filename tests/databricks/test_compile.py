"""Every model of the graph compiled for the `databricks` target, offline.

tests/databricks/test_render.py compiles representative models; this module compiles all of
them at once (with their data tests) and checks the two that used to need a workspace:

- `features_clinical` (and every model using dbt.dateadd / dbt.datediff): dbt-databricks
  asked the connection for its runtime version to choose the date functions. The project's
  macros/databricks/date_arithmetic.sql renders timestampadd / timestampdiff directly.
- the Python model `int_notes__entities` and the incremental wearables models: dbt renders
  `is_incremental()` into them (for Python models in the generated `dbtObj`), which looks the
  model's own table up in the catalog. On a workspace the relation cache answers it; here the
  cache is not populated and nothing can connect, so the harness answers with an empty Unity
  Catalog, i.e. what the first build of a new catalog sees. That look-up is an artefact of
  compiling without a workspace, not of the project, so the fix lives here.

The Python model's submission config is checked the way dbt-databricks reads it: the
manifest node parsed into its ParsedPythonModel, and the notebook it would upload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbt.adapters.databricks.impl import DatabricksAdapter
from dbt.adapters.databricks.python_models.python_config import ParsedPythonModel
from dbt.adapters.databricks.python_models.python_submissions import (
    PythonNotebookSubmitter,
    get_library_config,
)

from mmlake.dbt_runner import run_dbt
from tests.governance.test_unity_catalog_render import CATALOG, PLACEHOLDER_WORKSPACE, REPO_ROOT

# What the dbt job of the bundle sets (databricks/resources/dbt.yml), with placeholder values.
CLUSTER_ID = "0123-456789-abcdefgh"
WHEEL = "/Volumes/precision_medicine/bronze/landing/wheels/mmlake-0.1.0-py3-none-any.whl"
SUBMISSION_ENV = {
    "DATABRICKS_CLUSTER_ID": CLUSTER_ID,
    "MMLAKE_PYTHON_MODEL_PACKAGES": f"medspacy==1.3.1 {WHEEL}",
    "MMLAKE_PYTHON_MODEL_LIBS": json.dumps([{"whl": WHEEL}]),
}
PYTHON_MODEL = "model.multimodal_lakehouse.int_notes__entities"


def _empty_catalog(self: DatabricksAdapter, schema_relation: Any) -> list[Any]:
    """No table exists yet in any schema: what a first build of a new catalog sees."""
    return []


@pytest.fixture(scope="module")
def compiled_graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One `dbt compile` of every model (and its data tests); yields dbt's target dir."""
    root = tmp_path_factory.mktemp("databricks_compile") / "lakehouse"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_ROOT", str(root))
        for key, value in {**PLACEHOLDER_WORKSPACE, **SUBMISSION_ENV}.items():
            mp.setenv(key, value)
        mp.delenv("MMLAKE_PYTHON_MODEL_SUBMISSION", raising=False)
        mp.setattr(DatabricksAdapter, "list_relations_without_caching", _empty_catalog)
        # On-run hooks are not selected: they run at `dbt build` time against the catalog
        # (tests/governance/test_unity_catalog_render.py renders them with their inputs).
        run_dbt(
            ["compile", "--no-populate-cache", "--no-introspect", "-s", "resource_type:model"],
            target="databricks",
        )
        yield root / "dbt" / "target"


@pytest.fixture(scope="module")
def manifest(compiled_graph: Path) -> dict[str, Any]:
    return json.loads((compiled_graph / "manifest.json").read_text())


def compiled_code(target: Path, name: str, suffix: str = ".sql") -> str:
    return next((target / "compiled").rglob(f"{name}{suffix}")).read_text()


def test_every_model_compiles_offline(compiled_graph: Path, manifest: dict[str, Any]) -> None:
    results = json.loads((compiled_graph / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    models = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert models <= set(statuses), sorted(models - set(statuses))
    assert {uid: s for uid, s in statuses.items() if s != "success"} == {}
    # Their data tests were compiled too.
    assert any(uid.startswith("test.") for uid in statuses)
    python_models = {uid for uid in models if manifest["nodes"][uid]["language"] == "python"}
    assert python_models == {PYTHON_MODEL}, "a new Python model needs a submission config"


def test_features_clinical_renders_databricks_date_functions(compiled_graph: Path) -> None:
    sql = compiled_code(compiled_graph, "features_clinical")
    for table in ("int_ehr__index_dates", "int_ehr__oncology_diagnoses", "stg_ehr__observations"):
        assert f"`{CATALOG}`.`silver`.`{table}`" in sql
    assert f"`{CATALOG}`.`bronze`.`oncology_drugs`" in sql
    # Ages of the records at the landmark, whole days, chosen without asking the compute.
    assert "timestampdiff(\n        day,\n        date_trunc('day', ecog.ecog_date)," in sql
    assert "date_trunc('day', index_dates.landmark_date)" in sql
    assert "to_unix_timestamp" not in sql  # the pre-DBR 10.4 fallback
    assert "observations.loinc_code != '97509-4'" in sql
    for local in ("delta_scan", "read_parquet", str(REPO_ROOT)):
        assert local not in sql
    index_dates = compiled_code(compiled_graph, "int_ehr__index_dates")
    assert "cast(timestampadd(day, 30, diagnosis_date) as date) as landmark_date" in index_dates


def test_incremental_models_render_their_first_build(compiled_graph: Path) -> None:
    # Against an empty catalog is_incremental() is false: the full, first-build query.
    sql = compiled_code(compiled_graph, "stg_wearables__events")
    assert f"`{CATALOG}`.`bronze`" in sql
    assert f"`{CATALOG}`.`silver`.`stg_wearables__events`" not in sql


def test_python_model_submission_config(manifest: dict[str, Any]) -> None:
    node = manifest["nodes"][PYTHON_MODEL]
    config = node["config"]
    assert config["submission_method"] == "all_purpose_cluster"
    assert config["create_notebook"] is True
    # Parsed exactly as dbt-databricks parses the node when it submits the model.
    parsed = ParsedPythonModel(**node).config
    assert parsed.cluster_id == CLUSTER_ID
    assert parsed.packages == ["medspacy==1.3.1", WHEEL]
    assert parsed.notebook_scoped_libraries is True
    assert parsed.additional_libs == [{"whl": WHEEL}]
    # Packages are installed by the notebook itself; additional_libs become task libraries.
    libraries = get_library_config(
        parsed.packages, parsed.index_url, parsed.additional_libs, notebook_scoped_libraries=True
    )
    assert libraries == {"libraries": [{"whl": WHEEL}]}


def test_python_model_notebook_installs_its_packages(
    compiled_graph: Path, manifest: dict[str, Any]
) -> None:
    code = compiled_code(compiled_graph, "int_notes__entities", ".py")
    assert "from mmlake.nlp import extract_entities" in code
    refs = f'"brz_notes__keyed_text": "`{CATALOG}`.`bronze`.`brz_notes__keyed_text`"'
    assert refs in code
    assert "self.is_incremental = False" in code
    submitter = PythonNotebookSubmitter(
        None,  # type: ignore[arg-type]  # nothing is sent: only the notebook text is built
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        ParsedPythonModel(**manifest["nodes"][PYTHON_MODEL]),
    )
    notebook = submitter._prepare_code_with_notebook_scoped_packages(code)
    first_cell = notebook.split("\n", 1)[0]
    assert first_cell == f"%pip install -q medspacy==1.3.1 {WHEEL}"
    assert "dbutils.library.restartPython()" in notebook
    assert notebook.endswith(code)
