{#-
    wearables_expectation_violations(model, actions): the rows of `model` that break a rule
    of seeds/wearables/wearables_expectations.csv whose action is in `actions`, one row per
    (rule, event): the same rules the Spark Declarative Pipeline applies
    (pipelines/wearables/wearables_pipeline.py), checked on silver. Only the rules marked
    checked_in_silver are used: the others are about text silver never holds, which
    ingestion quarantines. The rules are read from the seed when the test runs (run_query),
    so a rule added to the seed is checked without touching the tests. A null condition
    counts as broken, as in the pipeline.
-#}
{% macro wearables_expectation_violations(model, actions) -%}
    {%- set rules_relation = ref('wearables_expectations') -%}
    {%- set rules = [] -%}
    {#- Compiled before the seed exists (sqlfluff, a bare `dbt compile`): no rules yet. -#}
    {%- set seeded = execute and adapter.get_relation(
        database=rules_relation.database,
        schema=rules_relation.schema,
        identifier=rules_relation.identifier,
    ) is not none -%}
    {%- if seeded -%}
        {%- set query -%}
            select rule, condition_sql
            from {{ rules_relation }}
            where
                checked_in_silver
                and action in ('{{ actions | join("', '") }}')
            order by rule
        {%- endset -%}
        {%- set rules = run_query(query).rows -%}
    {%- endif -%}
    {%- if rules | length == 0 %}
        select
            cast(null as {{ dbt.type_string() }}) as rule_name,
            cast(null as {{ dbt.type_string() }}) as event_id
        where 1 = 0
    {%- endif -%}
    {%- for rule in rules %}
        select
            '{{ rule[0] }}' as rule_name,
            event_id
        from {{ model }}
        where not coalesce(({{ rule[1] }}), false)
        {% if not loop.last %}union all{% endif %}
    {%- endfor -%}
{%- endmacro %}
