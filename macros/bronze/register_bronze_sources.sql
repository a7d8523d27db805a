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
      are seen. Only the sources the selected nodes read are registered. Spark cannot infer
      a table from a folder that holds no files: when `mmlake.dbt_runner` reports the folder
      as never landed (MMLAKE_BRONZE_LANDED, the bronze folders holding data), the source is
      an empty view with its declared columns instead, as on DuckDB; it becomes the table
      again once the modality lands.
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
    {#- Unset (dbt run by hand): every needed source is taken as landed, as before. -#}
    {%- set landed = env_var('MMLAKE_BRONZE_LANDED', '<unknown>') -%}
    {%- set is_view = run_query(
        "show views in " ~ node.schema ~ " like '" ~ node.identifier ~ "'"
    ).rows | length > 0 -%}
    {%- if landed != '<unknown>' and node.identifier not in landed.split(',') -%}
        {%- do register_declared_empty(node, is_view) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if is_view -%}
        {#- An empty stand-in from a run before this modality landed. -#}
        {%- call statement('bronze_drop_' ~ node.identifier) -%}
            drop view {{ node.schema }}.{{ node.identifier }}
        {%- endcall -%}
    {%- endif -%}
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

{#- Never landed: an empty view with the source's declared columns, typed for Spark. -#}
{% macro register_declared_empty(node, is_view) -%}
    {%- if not node.columns -%}
        {{ exceptions.raise_compiler_error(
            "bronze source " ~ node.source_name ~ "." ~ node.name ~ " was never landed at "
            ~ bronze_folder(node) ~ " and declares no columns to stand in for it") }}
    {%- endif -%}
    {{ log("bronze." ~ node.identifier ~ ": nothing landed at " ~ bronze_folder(node)
        ~ "; registering it empty", info=true) }}
    {%- if not is_view -%}
        {%- call statement('bronze_drop_' ~ node.identifier) -%}
            drop table if exists {{ node.schema }}.{{ node.identifier }}
        {%- endcall -%}
    {%- endif -%}
    {%- set typed_nulls = [] -%}
    {%- for column in node.columns.values() -%}
        {%- do typed_nulls.append(
            "cast(null as " ~ spark_declared_type(column.data_type or "varchar") ~ ") as `"
            ~ column.name ~ "`"
        ) -%}
    {%- endfor -%}
    {%- call statement('bronze_' ~ node.identifier) -%}
        create or replace view {{ node.schema }}.{{ node.identifier }} as
        select {{ typed_nulls | join(", ") }} where false
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
