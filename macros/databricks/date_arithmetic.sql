{#-
    dbt.dateadd / dbt.datediff on Databricks, without asking the compute for its runtime.

    dbt-databricks chooses between timestampadd/timestampdiff and the Spark 2 arithmetic by
    asking the connection for its Databricks Runtime version (adapter.has_dbr_capability),
    so every model using these macros (int_ehr__index_dates, features_clinical, ...) needs a
    live connection just to be compiled. Every compute this project can run on has both
    functions: Unity Catalog needs DBR 11.3+ (timestampadd/timestampdiff exist since 10.4)
    and SQL warehouses and serverless always have them. Rendering them unconditionally gives
    the SQL dbt-databricks itself renders on such compute, compiles offline and does not
    depend on which compute compiled it. The project's dispatch search order
    (dbt_project.yml) puts these before dbt-databricks' own versions; other adapters are
    untouched.
-#}
{% macro databricks__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{% macro databricks__datediff(first_date, second_date, datepart) -%}
    timestampdiff(
        {{ datepart }},
        {{ dbt.date_trunc(datepart, first_date) }},
        {{ dbt.date_trunc(datepart, second_date) }}
    )
{%- endmacro %}
