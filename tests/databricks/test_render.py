"""What the `databricks` target would run, rendered offline: model SQL and Unity Catalog governance.

tests/test_dbt_targets.py checks relation names and Delta configs of the reference models;
tests/governance/test_unity_catalog_render.py checks the governance statements exactly on a
fixture project and on one project model. This module adds the project's own models: the
compiled SQL of representative models (secret-keyed pseudonyms, three-part Unity Catalog
names, no local paths) and the governance statements of every gold model (whose contracts
give every column type) and of every silver model's tags and row filter, from their meta.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmlake.dbt_runner import dbt_env, run_dbt
from tests.governance.test_unity_catalog_render import (
    CATALOG,
    GOV,
    PLACEHOLDER_WORKSPACE,
    REPO_ROOT,
    compile_inline,
    repo_policy,
)

# Environment of the Python model's submission config (models/silver/notes/_notes__models.yml).
PYTHON_MODEL_ENV = (
    "MMLAKE_PYTHON_MODEL_SUBMISSION",
    "DATABRICKS_CLUSTER_ID",
    "MMLAKE_PYTHON_MODEL_PACKAGES",
    "MMLAKE_PYTHON_MODEL_LIBS",
)

# The silver EHR model, a gold features model with masks and row filters.
REPRESENTATIVE = ("stg_ehr__patients", "features_genomics")
RENDER_ALL = """
{%- set out = {} -%}
{%- for node in graph.nodes.values() if node.resource_type == 'model'
      and node.config.schema in ('silver', 'gold') -%}
    {%- set types = {} -%}
    {%- if node.config.schema == 'silver' -%}
        {#- Silver declares no data types; the hook gets them from the catalog. Tags and row
            filters do not depend on them. -#}
        {%- for column in node.columns.values() -%}
            {%- do types.update({column.name: 'string'}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do out.update({node.name: {'schema': node.config.schema, 'statements': fromjson(
        uc_render_model_governance(node.name, POLICY, tojson(types)))}}) -%}
{%- endfor -%}
{{ tojson(out) }}
"""


@pytest.fixture(scope="module")
def lakehouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("databricks_render") / "lakehouse"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_ROOT", str(root))
        for key, value in PLACEHOLDER_WORKSPACE.items():
            mp.setenv(key, value)
        # The Python model's submission settings fall back to their defaults.
        for key in PYTHON_MODEL_ENV:
            mp.delenv(key, raising=False)
        yield root


@pytest.fixture(scope="module")
def compiled(lakehouse_dir: Path) -> dict[str, str]:
    run_dbt(
        ["compile", "--no-populate-cache", "--no-introspect", "-s", *REPRESENTATIVE],
        target="databricks",
    )
    root = lakehouse_dir / "dbt" / "target" / "compiled"
    return {name: next(root.rglob(f"{name}.sql")).read_text() for name in REPRESENTATIVE}


@pytest.fixture(scope="module")
def manifest(compiled: dict[str, str], lakehouse_dir: Path) -> dict[str, Any]:
    return json.loads((lakehouse_dir / "dbt" / "target" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def governance(lakehouse_dir: Path) -> dict[str, Any]:
    inline = RENDER_ALL.replace("POLICY", json.dumps(json.dumps(repo_policy())))
    extra_env = dbt_env("databricks", lakehouse_dir)
    return json.loads(compile_inline(REPO_ROOT, lakehouse_dir.parent, inline, extra_env))


def test_silver_ehr_model_reads_bronze_in_the_catalog_and_keys_with_the_secret(
    compiled: dict[str, str],
) -> None:
    sql = compiled["stg_ehr__patients"]
    assert f"from `{CATALOG}`.`bronze`.`ehr_patients`" in sql
    # The pseudonym key is a Databricks secret read by the SQL itself: never in the text.
    assert "secret('mmlake', 'pseudonym-key')" in sql
    assert "sha2(" in sql and "upper(trim(mrn))" in sql
    assert "getvariable(" not in sql and "${spark.mmlake.pseudonym_key}" not in sql
    # The MRN is read to key the patient and never selected out of silver.
    final = sql.rsplit("select", 1)[1]
    assert "mrn" not in final and "patient_key" in final


def test_gold_features_model_reads_silver_in_the_catalog(compiled: dict[str, str]) -> None:
    sql = compiled["features_genomics"]
    for table in ("int_ehr__index_dates", "stg_genomics__samples", "int_genomics__biomarkers"):
        assert f"`{CATALOG}`.`silver`.`{table}`" in sql
    # Nothing local leaks into what the warehouse runs.
    for local in ("delta_scan", "read_parquet", str(REPO_ROOT), "lakehouse/"):
        assert local not in sql


def test_python_nlp_model_is_configured_for_delta_in_the_silver_schema(
    manifest: dict[str, Any],
) -> None:
    node = manifest["nodes"]["model.multimodal_lakehouse.int_notes__entities"]
    assert node["language"] == "python"
    assert (node["database"], node["schema"]) == (CATALOG, "silver")
    assert node["config"]["materialized"] == "table"
    assert [r["name"] for r in node["refs"]] == ["brz_notes__keyed_text"]
    assert "from mmlake.nlp import extract_entities" in node["raw_code"]
    # dbt-databricks runs it as a notebook job on the bundle's cluster (test_compile.py).
    config = node["config"]
    assert (config["submission_method"], config["cluster_id"]) == ("all_purpose_cluster", "")
    assert config["packages"] == ["medspacy==1.3.1"]
    assert config["notebook_scoped_libraries"] is True
    assert config["additional_libs"] == []
    keyed = manifest["nodes"]["model.multimodal_lakehouse.brz_notes__keyed_text"]
    assert (keyed["database"], keyed["schema"]) == (CATALOG, "bronze")


def test_every_silver_and_gold_model_renders_its_governance(
    governance: dict[str, Any], manifest: dict[str, Any]
) -> None:
    models = {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"].get("schema") in ("silver", "gold")
    }
    assert set(governance) == set(models)
    for name, rendered in governance.items():
        table = f"`{CATALOG}`.`{rendered['schema']}`.`{name}`"
        statements = rendered["statements"]
        tags = [s for s in statements if " set tags " in s]
        assert tags[0].startswith(f"alter table {table} set tags ('classification' = ")
        tagged = {s.split("alter column `", 1)[1].split("`", 1)[0] for s in tags[1:]}
        assert tagged == set(models[name]["columns"]), name
        meta = {**models[name].get("meta", {}), **models[name]["config"].get("meta", {})}
        filters = [s for s in statements if " set row filter " in s]
        declared = set(meta.get("row_filters") or [])
        if meta.get("classification") == "genomic_28cfr202":
            declared.add("cfr202")
        if not declared:
            assert not filters, name
            continue
        order = [f for f in ("consent", "study", "cfr202") if f in declared]
        on = "" if order == ["cfr202"] else "`patient_key`"
        assert filters == [
            f"alter table {table} set row filter {GOV}.`row_filter_{'_'.join(order)}` on ({on})"
        ], name


def test_gold_masks_follow_the_column_types_of_the_contracts(
    governance: dict[str, Any], manifest: dict[str, Any]
) -> None:
    node = manifest["nodes"]["model.multimodal_lakehouse.features_genomics"]
    statements = governance["features_genomics"]["statements"]
    table = f"`{CATALOG}`.`gold`.`features_genomics`"
    masks = {
        s.split("alter column `", 1)[1].split("`", 1)[0]: s for s in statements if " set mask " in s
    }
    # The pseudonymous key is hashed for partners; genomic values are nulled per type.
    assert masks["patient_key"] == (
        f"alter table {table} alter column `patient_key` set mask {GOV}.`mask_hash_string`"
        " using columns ('study_id')"
    )
    for column, spec in node["columns"].items():
        classification = spec["meta"].get("classification") or spec.get("config", {}).get(
            "meta", {}
        ).get("classification")
        if classification == "genomic_28cfr202":
            assert "using columns ('genomic_28cfr202')" in masks[column], column
    assert set(masks) <= set(node["columns"])
    every_gold = [r for r in governance.values() if r["schema"] == "gold"]
    assert sum(1 for r in every_gold for s in r["statements"] if " set mask " in s) > 50
