{#-
    ehr_json_string(json_expr, path): a scalar of a raw FHIR resource as a string.

    `path` is a JSONPath in the subset both engines understand ($.a.b[0].c). DuckDB's
    json_extract_string and Spark's get_json_object both return null for a missing path and
    the unquoted text of a string value.
-#}
{% macro ehr_json_string(json_expr, path) -%}
    {{ return(adapter.dispatch('ehr_json_string', 'multimodal_lakehouse')(json_expr, path)) }}
{%- endmacro %}

{% macro default__ehr_json_string(json_expr, path) -%}
    get_json_object({{ json_expr }}, '{{ path }}')
{%- endmacro %}

{% macro duckdb__ehr_json_string(json_expr, path) -%}
    json_extract_string({{ json_expr }}, '{{ path }}')
{%- endmacro %}

{#-
    ehr_parse_instant(expr): a FHIR instant/dateTime string ('2022-08-11T14:12:20-05:00',
    '2022-08-11T19:12:20Z', '2022-08-11') as a UTC timestamp without time zone, the silver
    convention. DuckDB goes through timestamptz (the session zone is UTC); Spark's cast
    understands the offset and yields the instant in its session zone (UTC in profiles.yml).
-#}
{% macro ehr_parse_instant(expr) -%}
    {{ return(adapter.dispatch('ehr_parse_instant', 'multimodal_lakehouse')(expr)) }}
{%- endmacro %}

{% macro default__ehr_parse_instant(expr) -%}
    cast({{ expr }} as timestamp)
{%- endmacro %}

{% macro duckdb__ehr_parse_instant(expr) -%}
    cast(try_cast({{ expr }} as timestamptz) as timestamp)
{%- endmacro %}

{#-
    ehr_add_days(date_expr, days): the calendar date `days` after `date_expr`, as a date on
    every engine (dbt.dateadd returns a timestamp on some adapters).
-#}
{% macro ehr_add_days(date_expr, days) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{#- ehr_days_between(start_expr, end_expr): whole days from start to end, as int. -#}
{% macro ehr_days_between(start_expr, end_expr) -%}
    cast({{ dbt.datediff(start_expr, end_expr, 'day') }} as int)
{%- endmacro %}
