{#-
    Post-hook of every gold model (dbt_project.yml): make the model a real Delta table.

    - Spark/Databricks (default__): nothing to do, the table materialization already wrote
      the configured file_format (delta on Databricks).
    - DuckDB: DuckDB cannot write Delta, so inside dbt's transaction the hook
        1. stages the just-built table as Parquet in <dir of warehouse.duckdb>/_staging/,
        2. has the mmlake plugin (mmlake/dbt_plugin.py) write it as a new version of the
           Delta table <lakehouse_root>/gold/<model> with deltalake, and
        3. replaces the DuckDB table gold.<model> by a view over delta_scan('<absolute
           path>'), so dbt tests, downstream models and users all read the Delta table.
      A failure anywhere rolls the DuckDB side back to the previous view.

    The hook runs inside the model's transaction on purpose: `transaction: false` hooks
    are skipped by dbt-spark and fail on dbt-databricks' v2 materializations (they issue a
    bare COMMIT, dbt-databricks issue #1549).
-#}
{% macro publish_delta() -%}
    {{ return(adapter.dispatch('publish_delta', 'multimodal_lakehouse')()) }}
{%- endmacro %}

{% macro default__publish_delta() -%}
{%- endmacro %}

{% macro duckdb__publish_delta() -%}
    {#- Hooks are also rendered while parsing; only publish when dbt really executes. -#}
    {%- if execute -%}
        {#- The staging directory sits next to the database file (the plugin creates it when
            connecting); DuckDB reports that file's absolute path. -#}
        {%- set db_dir = run_query(
            "select parse_dirpath(path) from duckdb_databases() where database_name = '"
            ~ this.database ~ "'"
        ).columns[0].values()[0] -%}
        {%- set staging_path = db_dir ~ '/_staging/' ~ this.identifier ~ '.parquet' -%}
        {%- call statement('publish_delta_stage') -%}
            copy (select * from {{ this }}) to '{{ staging_path }}' (format parquet)
        {%- endcall -%}
        {#- The plugin adds the resolved absolute table path as request.delta_uri. -#}
        {%- set request = {'delta_location': var('lakehouse_root') ~ '/gold/' ~ this.identifier} -%}
        {%- do adapter.store_relation('mmlake', this, [], staging_path, 'parquet', request) -%}
        drop table {{ this }};
        create view {{ this }} as select * from delta_scan('{{ request["delta_uri"] }}')
    {%- endif -%}
{%- endmacro %}
