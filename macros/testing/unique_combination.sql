{#-
    Generic test (any model): no two rows share the given combination of columns (a composite key).
    Usage in YAML: data_tests: [{unique_combination: {arguments: {columns: [a, b]}}}]
-#}
{% test unique_combination(model, columns) -%}
    select
        {{ columns | join(', ') }},
        count(*) as n_rows
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{%- endtest %}
