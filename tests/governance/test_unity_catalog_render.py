"""The governance declaration compiled to Unity Catalog SQL, rendered offline.

No workspace is reachable here, so the Unity Catalog macros (macros/governance/
unity_catalog*.sql) are rendered with `dbt compile --inline` on the databricks target with
cache population and introspection off: nothing connects. The catalog look-ups the runtime
hooks make (policy seed rows, column types) are passed in, exactly as the hooks would pass them.

Exact statements are asserted on a small fixture project that uses the repository's macros
and seeds: its meta is fixed here, while the project's models are still being classified.
One more test renders a real model of the project to show the macros work on its manifest.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from dbt.cli.main import dbtRunner

from mmlake.dbt_runner import REPO_ROOT, dbt_env

CATALOG = "precision_medicine"
GOV = f"`{CATALOG}`.`governance`"
PLACEHOLDER_WORKSPACE = {
    "DATABRICKS_HOST": "dbc-00000000-0000.cloud.databricks.com",
    "DATABRICKS_HTTP_PATH": "/sql/1.0/warehouses/0000000000000000",
    "DATABRICKS_TOKEN": "dapi-not-a-real-token",
    "DATABRICKS_CATALOG": CATALOG,
}

FIXTURE_MODELS = """
version: 2
models:
  - name: stg_ehr__patients
    config:
      meta: {classification: phi, owner: ehr, row_filters: [consent]}
    columns:
      - name: patient_key
        meta: {classification: study_id}
      - name: birth_date
        meta: {classification: phi, mask: year_only}
      - name: death_date
        meta: {classification: phi, mask: year_only}
      - name: sex
        meta: {classification: clinical}
  - name: features_genomics
    config:
      meta: {classification: genomic_28cfr202, owner: genomics, row_filters: [cfr202, consent]}
    columns:
      - {name: patient_key, data_type: string, meta: {classification: study_id}}
      - {name: tmb, data_type: double, meta: {classification: genomic_28cfr202}}
      - {name: n_pathogenic_variants, data_type: int, meta: {classification: genomic_28cfr202}}
      - {name: pathogenic_genes, data_type: array<string>, meta: {classification: genomic_28cfr202}}
      - {name: n_samples, data_type: bigint, meta: {classification: derived}}
  - name: variant_calls
    config:
      meta: {classification: genomic_28cfr202, owner: genomics}
    columns:
      - {name: sample_key, data_type: string, meta: {classification: derived}}
      - {name: genotype, data_type: string, meta: {classification: genomic_28cfr202}}
  - name: gene_panel
    config:
      meta: {classification: public, owner: reference}
    columns:
      - {name: gene_symbol, data_type: string, meta: {classification: public}}
      - {name: chrom, data_type: string, meta: {classification: public}}
      - {name: start_pos, data_type: bigint, meta: {classification: public}}
"""

# What the catalog reports for the silver model, which declares no data_type; `mrn` is in
# the table but not in the YAML.
SILVER_COLUMN_TYPES = {
    "patient_key": "string",
    "birth_date": "date",
    "death_date": "date",
    "sex": "string",
    "mrn": "string",
}

RENDER_MACRO = """
{% macro render_all(arg_json) -%}
    {%- set arg = fromjson(arg_json) -%}
    {%- set out = {
        'setup': uc_setup_statements(arg['policy']),
        'first_build': uc_function_statements(
            [('governance', 'access_policies'), ('silver', 'stg_ehr__research_consents')]),
        'models': {},
    } -%}
    {%- for name, types in arg['column_types'].items() -%}
        {%- do out['models'].update({name: fromjson(uc_render_model_governance(
            name, tojson(arg['policy']), tojson(types)))}) -%}
    {%- endfor -%}
    {{- tojson(out) -}}
{%- endmacro %}
"""


def repo_policy() -> dict[str, Any]:
    """The policy seeds as the runtime hooks read them from governance.* tables."""
    seeds = REPO_ROOT / "seeds" / "governance"
    with (seeds / "access_policies.csv").open(newline="") as handle:
        access = list(csv.DictReader(handle))
    with (seeds / "classifications.csv").open(newline="") as handle:
        default_masks = {
            row["classification"]: row["default_mask"] for row in csv.DictReader(handle)
        }
    return {"access": access, "default_masks": default_masks}


def compile_inline(
    project: Path, work: Path, inline: str, extra_env: dict[str, str] | None = None
) -> str:
    """Render jinja in `project` for the databricks target without any connection."""
    env = {
        **(extra_env or {}),
        **PLACEHOLDER_WORKSPACE,
        "DBT_PROFILES_DIR": str(project),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "MMLAKE_TARGET": "databricks",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        result = dbtRunner().invoke(
            [
                *("compile", "--project-dir", str(project), "--target", "databricks"),
                *("--no-populate-cache", "--no-introspect", "--quiet", "--inline", inline),
            ]
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Setup and model statements of the fixture project, rendered once."""
    root = tmp_path_factory.mktemp("uc_fixture")
    project = root / "project"
    (project / "macros").mkdir(parents=True)
    for macro in [
        *(REPO_ROOT / "macros" / "governance").glob("unity_catalog*.sql"),
        REPO_ROOT / "macros" / "generate_schema_name.sql",
    ]:
        shutil.copy(macro, project / "macros" / macro.name)
    (project / "macros" / "render_all.sql").write_text(RENDER_MACRO)
    for layer, name in [
        ("silver", "stg_ehr__patients"),
        ("gold", "features_genomics"),
        ("gold", "variant_calls"),
        ("gold", "gene_panel"),
    ]:
        (project / "models" / layer).mkdir(parents=True, exist_ok=True)
        (project / "models" / layer / f"{name}.sql").write_text("select 1 as patient_key\n")
    (project / "models" / "_models.yml").write_text(FIXTURE_MODELS)
    (project / "dbt_project.yml").write_text(
        textwrap.dedent(
            """
            name: uc_fixture
            version: "0.1.0"
            config-version: 2
            profile: uc_fixture
            flags: {send_anonymous_usage_stats: false}
            models:
              uc_fixture:
                silver: {+schema: silver, +materialized: table}
                gold: {+schema: gold, +materialized: table}
            """
        )
    )
    (project / "profiles.yml").write_text(
        textwrap.dedent(
            """
            uc_fixture:
              target: databricks
              outputs:
                databricks:
                  type: databricks
                  host: "{{ env_var('DATABRICKS_HOST') }}"
                  http_path: "{{ env_var('DATABRICKS_HTTP_PATH') }}"
                  token: "{{ env_var('DATABRICKS_TOKEN') }}"
                  catalog: "{{ env_var('DATABRICKS_CATALOG') }}"
                  schema: gold
            """
        )
    )
    arg = {
        "policy": repo_policy(),
        "column_types": {
            "stg_ehr__patients": SILVER_COLUMN_TYPES,
            "features_genomics": {},
            "variant_calls": {},
            "gene_panel": {},
        },
    }
    code = compile_inline(project, root, "{{ render_all(" + json.dumps(json.dumps(arg)) + ") }}")
    return json.loads(code)


def test_silver_ehr_model_with_phi_dates(rendered: dict[str, Any]) -> None:
    table = f"`{CATALOG}`.`silver`.`stg_ehr__patients`"
    assert rendered["models"]["stg_ehr__patients"] == [
        f"alter table {table} set tags ('classification' = 'phi', 'owner' = 'ehr')",
        f"alter table {table} alter column `patient_key` set tags ('classification' = 'study_id')",
        f"alter table {table} alter column `birth_date` set tags ('classification' = 'phi')",
        f"alter table {table} alter column `death_date` set tags ('classification' = 'phi')",
        f"alter table {table} alter column `sex` set tags ('classification' = 'clinical')",
        # Undeclared in the YAML: governed as phi (fail closed), redacted.
        f"alter table {table} alter column `mrn` set tags ('classification' = 'phi')",
        # study_id is masked for external partners: hashed, the classification's default.
        f"alter table {table} alter column `patient_key` set mask {GOV}.`mask_hash_string`"
        " using columns ('study_id')",
        f"alter table {table} alter column `birth_date` set mask {GOV}.`mask_year_only_date`"
        " using columns ('phi')",
        f"alter table {table} alter column `death_date` set mask {GOV}.`mask_year_only_date`"
        " using columns ('phi')",
        f"alter table {table} alter column `mrn` set mask {GOV}.`mask_redact_string`"
        " using columns ('phi')",
        f"alter table {table} set row filter {GOV}.`row_filter_consent` on (`patient_key`)",
    ]


def test_genomics_gold_model_with_cfr202(rendered: dict[str, Any]) -> None:
    table = f"`{CATALOG}`.`gold`.`features_genomics`"
    statements = rendered["models"]["features_genomics"]
    # The array column has no shared mask function: its null mask is created before use.
    assert statements[0].startswith(
        f"create or replace function {GOV}.`mask_null_array_string`"
        "(v ARRAY<STRING>, classification_name STRING)\nreturns ARRAY<STRING>"
    )
    assert statements[1:] == [
        f"alter table {table} set tags"
        " ('classification' = 'genomic_28cfr202', 'owner' = 'genomics')",
        f"alter table {table} alter column `patient_key` set tags ('classification' = 'study_id')",
        f"alter table {table} alter column `tmb` set tags ('classification' = 'genomic_28cfr202')",
        f"alter table {table} alter column `n_pathogenic_variants` set tags"
        " ('classification' = 'genomic_28cfr202')",
        f"alter table {table} alter column `pathogenic_genes` set tags"
        " ('classification' = 'genomic_28cfr202')",
        f"alter table {table} alter column `n_samples` set tags ('classification' = 'derived')",
        f"alter table {table} alter column `patient_key` set mask {GOV}.`mask_hash_string`"
        " using columns ('study_id')",
        f"alter table {table} alter column `tmb` set mask {GOV}.`mask_null_double`"
        " using columns ('genomic_28cfr202')",
        f"alter table {table} alter column `n_pathogenic_variants` set mask {GOV}.`mask_null_int`"
        " using columns ('genomic_28cfr202')",
        f"alter table {table} alter column `pathogenic_genes` set mask"
        f" {GOV}.`mask_null_array_string` using columns ('genomic_28cfr202')",
        # One row filter per table in Unity Catalog: consent and cfr202 in one function.
        f"alter table {table} set row filter {GOV}.`row_filter_consent_cfr202` on (`patient_key`)",
    ]


def test_genomic_model_is_filtered_for_covered_persons_without_declaring_it(
    rendered: dict[str, Any],
) -> None:
    table = f"`{CATALOG}`.`gold`.`variant_calls`"
    statements = rendered["models"]["variant_calls"]
    assert statements[-2:] == [
        f"alter table {table} alter column `genotype` set mask {GOV}.`mask_null_string`"
        " using columns ('genomic_28cfr202')",
        # No patient_key needed: the 28 CFR 202 filter depends on the reader only.
        f"alter table {table} set row filter {GOV}.`row_filter_cfr202` on ()",
    ]


def test_public_seed_model_gets_tags_only(rendered: dict[str, Any]) -> None:
    table = f"`{CATALOG}`.`gold`.`gene_panel`"
    assert rendered["models"]["gene_panel"] == [
        f"alter table {table} set tags ('classification' = 'public', 'owner' = 'reference')",
        f"alter table {table} alter column `gene_symbol` set tags ('classification' = 'public')",
        f"alter table {table} alter column `chrom` set tags ('classification' = 'public')",
        f"alter table {table} alter column `start_pos` set tags ('classification' = 'public')",
    ]


def function_names(statements: list[str]) -> list[str]:
    prefix = f"create or replace function {GOV}.`"
    return [s[len(prefix) :].split("`", 1)[0] for s in statements if s.startswith(prefix)]


def test_setup_creates_every_mask_and_row_filter_function(rendered: dict[str, Any]) -> None:
    names = function_names(rendered["setup"])
    assert len(names) == len(set(names))
    assert {
        "mask_redact_string",
        "mask_hash_string",
        "mask_last4_string",
        "mask_year_only_string",
        "mask_year_only_date",
        "mask_year_only_timestamp",
    } | {
        f"mask_null_{f}" for f in ("string", "date", "timestamp", "int", "bigint", "double")
    } <= set(names)
    assert [n for n in names if n.startswith("row_filter_")] == [
        "row_filter_consent",
        "row_filter_study",
        "row_filter_cfr202",
        "row_filter_consent_study",
        "row_filter_consent_cfr202",
        "row_filter_study_cfr202",
        "row_filter_consent_study_cfr202",
    ]


def test_mask_function_reads_the_policy_seed(rendered: dict[str, Any]) -> None:
    (ddl,) = [s for s in rendered["setup"] if f"{GOV}.`mask_year_only_date`(" in s]
    assert ddl == (
        f"create or replace function {GOV}.`mask_year_only_date`"
        "(v DATE, classification_name STRING)\n"
        "returns DATE\n"
        "comment 'mmlake governance: mask_year_only_date of date columns; value, masked form or"
        " null by the access of the invoking principal to the classification"
        " (access_policies).'\n"
        "return case (\n"
        "        select coalesce(max(case p.access when 'full' then 2 when 'masked' then 1"
        " else 0 end), 0)\n"
        f"        from {GOV}.`access_policies` as p\n"
        "        where p.classification = classification_name"
        " and is_account_group_member(p.group_name)\n"
        "    )\n"
        "    when 2 then v\n"
        "    when 1 then trunc(v, 'YEAR')\n"
        "    else cast(null as DATE)\n"
        "end"
    )


def test_row_filter_functions_read_consents_studies_and_groups(rendered: dict[str, Any]) -> None:
    (ddl,) = [s for s in rendered["setup"] if "`row_filter_consent_study_cfr202`(" in s]
    assert "(row_patient_key STRING)\nreturns BOOLEAN" in ddl
    assert f"from `{CATALOG}`.`silver`.`stg_ehr__research_consents` as c" in ddl
    assert "c.patient_key = row_patient_key and c.consent_status = 'active'" in ddl
    # A group enrolled to every study ('*') sees every patient; others their studies' ones.
    assert "where g.study_id = '*' and is_account_group_member(g.group_name)" in ddl
    assert f"inner join {GOV}.`group_studies` as g on s.study_id = g.study_id" in ddl
    assert f"select 1 from {GOV}.`groups` as g" in ddl
    assert ddl.count("is_account_group_member(g.group_name)") == 3
    (cfr,) = [s for s in rendered["setup"] if "`row_filter_cfr202`(" in s]
    assert f"{GOV}.`row_filter_cfr202`()\nreturns BOOLEAN" in cfr


def test_grants_follow_the_policy_seed(rendered: dict[str, Any]) -> None:
    grants = [s for s in rendered["setup"] if s.startswith("grant ")]
    expected = []
    for group in [
        "data_stewards",
        "clinicians",
        "researchers",
        "ml_engineers",
        "external_partners",
    ]:
        expected.append(f"grant use catalog on catalog `{CATALOG}` to `{group}`")
        # Bronze and the governance schema only for groups with full access to everything.
        schemas = ["silver", "gold"] + (
            ["bronze", "governance"] if group == "data_stewards" else []
        )
        for schema in schemas:
            expected.append(f"grant use schema on schema `{CATALOG}`.`{schema}` to `{group}`")
            expected.append(f"grant select on schema `{CATALOG}`.`{schema}` to `{group}`")
    assert grants == expected


def test_functions_start_fail_closed_when_their_inputs_are_missing(
    rendered: dict[str, Any],
) -> None:
    first = dict(zip(function_names(rendered["first_build"]), rendered["first_build"], strict=True))
    assert first["mask_redact_string"].endswith("return cast(null as STRING)")
    assert first["row_filter_consent"].endswith("return false")
    assert first["row_filter_consent_cfr202"].endswith("return false")
    # The study and 28 CFR 202 filters read only tables that exist: the real bodies.
    assert "is_account_group_member" in first["row_filter_study_cfr202"]
    assert not [s for s in rendered["first_build"] if s.startswith("grant ")]


def test_project_model_renders_from_its_meta(tmp_path: Path) -> None:
    """features_notes of the project itself: row filters and masks from its YAML meta."""
    inline = (
        "{{ multimodal_lakehouse.uc_render_model_governance('features_notes', "
        + json.dumps(json.dumps(repo_policy()))
        + ") }}"
    )
    # dbt_env supplies the project's own variables (pseudonym key, lakehouse root).
    extra_env = dbt_env("databricks", tmp_path / "lakehouse")
    statements = json.loads(compile_inline(REPO_ROOT, tmp_path, inline, extra_env))
    table = f"`{CATALOG}`.`gold`.`features_notes`"
    assert statements[0].startswith(f"alter table {table} set tags ('classification' = ")
    assert f"alter table {table} alter column `last_note_date` set tags" in "\n".join(statements)
    masks = [s for s in statements if " set mask " in s]
    assert any(
        "`last_note_date` set mask" in s and "_date` using columns ('phi')" in s for s in masks
    )
    assert not any("`n_notes` set mask" in s for s in masks)
    assert statements[-1] == (
        f"alter table {table} set row filter {GOV}.`row_filter_consent_study` on (`patient_key`)"
    )
