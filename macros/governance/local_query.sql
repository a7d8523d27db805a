{#-
    dbt run-operation governed_query --args '{principal: researcher@mmlake.local, sql: "select
    count(*) from consumer.features_notes"}'

    For data stewards who live in dbt: runs one SELECT as `principal` through the consumer
    views (unqualified names resolve to consumer.*) and prints the result. Like `mmlake query`,
    a direct reference to bronze/silver/gold is refused unless the principal is unrestricted
    (full access to every classification). The check here is textual (schema-qualified names);
    `mmlake query` parses the SQL.

    The read is recorded in governance.audit_reads_pending; mmlake.dbt_runner moves pending
    rows to the Delta table <lakehouse>/governance/audit_reads after the invocation (a plain
    `dbt run-operation` leaves them pending until the next invocation through mmlake).
-#}
{% macro governed_query(principal, sql, limit=50) -%}
    {{ return(adapter.dispatch('governed_query', 'multimodal_lakehouse')(principal, sql, limit)) }}
{%- endmacro %}

{% macro default__governed_query(principal, sql, limit) -%}
    {{ exceptions.raise_compiler_error(
        'governed_query is the local emulation; on Databricks run the query as the principal '
        ~ 'and Unity Catalog enforces the same policies') }}
{%- endmacro %}

{% macro duckdb__governed_query(principal, sql, limit) -%}
    {%- call statement('governed_principal') -%}
        set variable mmlake_principal = {{ local_sql_string(principal) }}
    {%- endcall -%}
    {%- set check = run_query(
        'select governance.principal_known(), governance.principal_unrestricted()') -%}
    {%- set known = check.columns[0].values()[0] -%}
    {%- set unrestricted = check.columns[1].values()[0] -%}
    {%- set raw = modules.re.search('\\b(bronze|silver|gold)\\s*\\.', sql | lower) -%}
    {%- set status = 'ok' -%}
    {%- set message = none -%}
    {%- if not known -%}
        {%- set status = 'refused' -%}
        {%- set message = 'unknown principal ' ~ principal -%}
    {%- elif raw and not unrestricted -%}
        {%- set status = 'refused' -%}
        {%- set message = 'only unrestricted principals read ' ~ raw.group(1) ~ ' directly' -%}
    {%- elif ';' in sql | trim | trim(';') -%}
        {%- set status = 'refused' -%}
        {%- set message = 'a governed read is exactly one statement' -%}
    {%- endif -%}
    {%- set row_count = none -%}
    {%- set columns = [] -%}
    {%- if status == 'ok' -%}
        {%- call statement('governed_search_path') -%}
            set search_path = 'consumer'
        {%- endcall -%}
        {%- set result = run_query(sql | trim | trim(';')) -%}
        {%- set row_count = result.rows | length -%}
        {%- set columns = result.column_names | list -%}
        {%- do result.limit(limit).print_table(max_columns=none) -%}
        {{ log(row_count ~ ' rows as ' ~ principal ~ ' (audited)', info=true) }}
    {%- else -%}
        {{ log('refused: ' ~ message, info=true) }}
    {%- endif -%}
    {%- call statement('governed_audit') -%}
        reset search_path;
        reset variable mmlake_principal;
        create table if not exists governance.audit_reads_pending (
            read_at timestamptz, principal varchar, via varchar, status varchar,
            columns varchar[], row_count bigint, sql varchar, message varchar
        );
        insert into governance.audit_reads_pending values (
            current_timestamp, {{ local_sql_string(principal) }}, 'dbt governed_query',
            {{ local_sql_string(status) }},
            [{% for c in columns %}{{ local_sql_string(c) }}{{ ', ' if not loop.last }}{% endfor %}]::varchar[],
            {{ row_count if row_count is not none else 'null' }},
            {{ local_sql_string(sql) }}, {{ local_sql_string(message) }}
        )
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {%- if status != 'ok' -%}
        {{ exceptions.raise_compiler_error('governed_query refused: ' ~ message) }}
    {%- endif -%}
{%- endmacro %}
