{#-
    on-run-start hook (dbt_project.yml): make every bronze source a relation of the target.

    Bronze tables are written by `mmlake ingest`, not by dbt, as folders
    <lakehouse_root>/bronze/<identifier>. A source opts in with source-level
    `meta: {landed_by: mmlake_ingest}`; its tables keep their folder name as identifier.

    - DuckDB: a view bronze.<identifier> over delta_scan('<folder>'). When the folder holds
      no Delta table (that modality was never ingested: a cohort without imaging, say), the
      view is an empty relation with the columns and data types declared in the source YAML,
      so every silver and gold model still builds and a missing modality is simply absent.
    - Spark: an external table over the folder, in the session's table format (parquet
      unless the Delta jars are configured), refreshed so files landed since the last run
      are seen. Spark cannot infer a table from a folder that does not exist, so only the
      sources that the selected nodes read are registered, and those must have been landed
      (`mmlake ingest --engine spark`).
    - Databricks: nothing; the ingestion jobs write Unity Catalog tables <catalog>.bronze.*.
-#}
{% macro register_bronze_sources() -%}
    {%- if execute -%}
        {#- Sources read by the nodes this invocation runs (models and tests alike). -#}
        {%- set needed = [] -%}
        {%- for unique_id in selected_resources -%}
            {%- set selected = graph.nodes.get(unique_id) -%}
            {%- if selected is not none -%}
                {%- do needed.extend(selected.depends_on.nodes) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for node in graph.sources.values()
            if node.source_meta.get('landed_by') == 'mmlake_ingest' -%}
            {%- do adapter.dispatch('register_bronze_source', 'multimodal_lakehouse')(
                node, node.unique_id in needed
            ) -%}
        {%- endfor -%}
        {#- dbt rolls back the hooks' connection when they end; keep the registrations. -#}
        {%- do adapter.commit() -%}
    {%- endif -%}
{%- endmacro %}

{% macro bronze_folder(node) -%}
    {{ return(var('lakehouse_root') ~ '/bronze/' ~ node.identifier) }}
{%- endmacro %}

{% macro default__register_bronze_source(node, needed) -%}
    {%- if not needed -%}{{ return(none) }}{%- endif -%}
    {%- set fmt = lakehouse_file_format() -%}
    {%- call statement('bronze_schema') -%}
        create schema if not exists {{ node.schema }}
    {%- endcall -%}
    {%- call statement('bronze_' ~ node.identifier) -%}
        create table if not exists {{ node.schema }}.{{ node.identifier }}
        using {{ fmt }}
        {%- if fmt == 'parquet' %} options (mergeSchema 'true'){% endif %}
        location '{{ bronze_folder(node) }}'
    {%- endcall -%}
    {%- call statement('bronze_refresh_' ~ node.identifier) -%}
        refresh table {{ node.schema }}.{{ node.identifier }}
    {%- endcall -%}
{%- endmacro %}

{% macro databricks__register_bronze_source(node, needed) -%}
{%- endmacro %}

{#- DuckDB registers every bronze table, read or not: the views are how people query bronze. -#}
{% macro duckdb__register_bronze_source(node, needed) -%}
    {%- set folder = bronze_folder(node) -%}
    {%- set commits = run_query(
        "select count(*) from glob('" ~ folder ~ "/_delta_log/*.json')"
    ).columns[0].values()[0] -%}
    {%- call statement('bronze_' ~ node.identifier) -%}
        create schema if not exists {{ node.schema }};
        create or replace view {{ node.schema }}.{{ node.identifier }} as
        {% if commits > 0 -%}
            select * from delta_scan('{{ folder }}')
        {%- else -%}
            {%- if not node.columns -%}
                {{ exceptions.raise_compiler_error(
                    "bronze source " ~ node.source_name ~ "." ~ node.name
                    ~ " has no Delta table at " ~ folder
                    ~ " and declares no columns to stand in for it") }}
            {%- endif -%}
            {{ log("bronze." ~ node.identifier ~ ": no Delta table at " ~ folder
                ~ "; registering it empty", info=true) }}
            {%- set typed_nulls = [] -%}
            {%- for column in node.columns.values() -%}
                {%- do typed_nulls.append(
                    "cast(null as " ~ (column.data_type or "varchar") ~ ") as \"" ~ column.name ~ "\""
                ) -%}
            {%- endfor %}
            select {{ typed_nulls | join(", ") }} where false
        {%- endif %}
    {%- endcall -%}
{%- endmacro %}
