{#-
    Table format of a model, resolved per engine at parse time:
        {{ config(file_format=lakehouse_file_format()) }}
    dbt_project.yml cannot call macros, so models set it in their config block.
    - Databricks: always delta (Unity Catalog managed tables are Delta).
    - Spark: var spark_file_format (parquet unless the Delta Lake jars are configured).
    - DuckDB: none; the local target publishes gold as Delta with publish_delta() instead.
-#}
{% macro lakehouse_file_format() -%}
    {{ return(adapter.dispatch('lakehouse_file_format', 'multimodal_lakehouse')()) }}
{%- endmacro %}

{% macro default__lakehouse_file_format() -%}
    {{ return(var('spark_file_format', 'parquet')) }}
{%- endmacro %}

{% macro databricks__lakehouse_file_format() -%}
    {{ return('delta') }}
{%- endmacro %}

{% macro duckdb__lakehouse_file_format() -%}
    {{ return(none) }}
{%- endmacro %}
