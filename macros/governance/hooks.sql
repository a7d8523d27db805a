{#-
    Where governance runs in a dbt invocation. The declaration lives in model/column `meta`
    (classification, mask, row_filters, owner) and in the seeds of seeds/governance/; these
    dispatchers compile it per engine:

    - governance_setup()        on-run-start: mask and row-filter functions, schemas, grants;
    - apply_governance()        post-hook of every silver and gold model: tags, masks, filters
                                (Unity Catalog) or the secure consumer view (local emulation);
    - governance_finalize(results)  on-run-end: the classification registry, audit of the run.

    databricks__ implementations: macros/governance/unity_catalog*.sql; duckdb__ (the local
    emulation): macros/governance/local*.sql. Engines without an implementation do nothing.
-#}
{% macro governance_setup() -%}
    {{ return(adapter.dispatch('governance_setup', 'multimodal_lakehouse')()) }}
{%- endmacro %}

{% macro default__governance_setup() -%}
{%- endmacro %}

{% macro apply_governance() -%}
    {{ return(adapter.dispatch('apply_governance', 'multimodal_lakehouse')()) }}
{%- endmacro %}

{% macro default__apply_governance() -%}
{%- endmacro %}

{% macro governance_finalize(results) -%}
    {{ return(adapter.dispatch('governance_finalize', 'multimodal_lakehouse')(results)) }}
{%- endmacro %}

{% macro default__governance_finalize(results) -%}
{%- endmacro %}
