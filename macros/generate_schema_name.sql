{#-
    Layer folders set +schema (bronze/silver/gold) and that name is used verbatim on every
    target, instead of dbt's default "<target schema>_<custom schema>". The same relation
    names then hold on DuckDB (warehouse.gold.x), Spark (gold.x) and Unity Catalog
    (<catalog>.gold.x). Nodes without a custom schema fall back to the target's schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
