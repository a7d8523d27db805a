{#-
    Date arithmetic of the notes models, written once per engine family.
    notes_add_days(date_expr, days): the date `days` days after (negative: before) date_expr.
    notes_days_between(first, second): whole days from `first` to `second` (second - first).
-#}
{% macro notes_add_days(date_expr, days) -%}
    {{ return(adapter.dispatch('notes_add_days', 'multimodal_lakehouse')(date_expr, days)) }}
{%- endmacro %}

{% macro default__notes_add_days(date_expr, days) -%}
    date_add({{ date_expr }}, {{ days }})
{%- endmacro %}

{% macro duckdb__notes_add_days(date_expr, days) -%}
    cast({{ date_expr }} + to_days(cast({{ days }} as integer)) as date)
{%- endmacro %}

{% macro notes_days_between(first, second) -%}
    {{ return(adapter.dispatch('notes_days_between', 'multimodal_lakehouse')(first, second)) }}
{%- endmacro %}

{% macro default__notes_days_between(first, second) -%}
    datediff({{ second }}, {{ first }})
{%- endmacro %}

{% macro duckdb__notes_days_between(first, second) -%}
    date_diff('day', {{ first }}, {{ second }})
{%- endmacro %}
