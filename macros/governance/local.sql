{#-
    Local emulation of Unity Catalog governance on DuckDB (docs/governance.md).

    governance_setup (on-run-start) creates the `governance` and `consumer` schemas and the
    policy functions as DuckDB macros. Every function reads the principal of the session from
    the variable `mmlake_principal` (`set variable mmlake_principal = '...'`) and its groups
    from the seed governance.principals; access to a classification is the most permissive
    over those groups (full > masked > denied), from the seed governance.access_policies.

    DuckDB binds a macro's and a view's tables when it is created, so the tables they read are
    made to exist first: a governance seed not loaded yet is created from its CSV (the seed
    then reloads the same columns), and the consent / study-enrolment silver models of EHR are
    created as EMPTY placeholders until their model builds - filters over them then let no row
    through (fail closed).
-#}

{#- Relations the row filters read (EHR silver models, docs/governance.md). -#}
{% macro local_governance_filter_relations() -%}
    {{ return({
        'consent': 'silver.stg_ehr__research_consents',
        'study': 'silver.stg_ehr__research_subjects',
    }) }}
{%- endmacro %}

{% macro duckdb__governance_setup() -%}
    {%- if execute -%}
        {%- call statement('governance_schemas') -%}
            create schema if not exists governance;
            create schema if not exists consumer;
            create schema if not exists silver
        {%- endcall -%}
        {#- Governance seeds are plain CSVs: create a missing one from the file itself. dbt
            cached the relations before this hook, so each created table is added to that
            cache, or the seed/model would try to create it again. -#}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'seed' and node.config.schema == 'governance' -%}
            {%- set identifier = node.alias or node.name -%}
            {%- if adapter.get_relation(database=target.database, schema='governance',
                                        identifier=identifier) is none -%}
                {%- set csv_path = node.root_path ~ '/' ~ node.original_file_path -%}
                {%- call statement('governance_seed_' ~ identifier) -%}
                    create table if not exists governance.{{ identifier }} as
                    select * from read_csv('{{ csv_path }}', header = true)
                {%- endcall -%}
                {%- do local_cache_added('governance', identifier) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set placeholders = {
            'stg_ehr__research_consents': 'patient_key varchar, consent_status varchar, '
                ~ 'scope varchar, decided_on date',
            'stg_ehr__research_subjects': 'patient_key varchar, study_id varchar',
        } -%}
        {%- for identifier, columns in placeholders.items() -%}
            {%- if adapter.get_relation(database=target.database, schema='silver',
                                        identifier=identifier) is none -%}
                {%- call statement('governance_placeholder_' ~ identifier) -%}
                    create table if not exists silver.{{ identifier }} ({{ columns }})
                {%- endcall -%}
                {%- do local_cache_added('silver', identifier) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- call statement('governance_functions') -%}
            {{ local_governance_functions() }}
        {%- endcall -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
{%- endmacro %}

{% macro local_cache_added(schema, identifier) -%}
    {%- do adapter.cache_added(api.Relation.create(
        database=target.database, schema=schema, identifier=identifier, type='table')) -%}
{%- endmacro %}

{#- The policy functions; one statement per macro, all replaced on every run. -#}
{% macro local_governance_functions() -%}
    {%- set rel = local_governance_filter_relations() -%}
    -- The principal of this session, or null when none was set.
    create or replace macro governance.current_principal() as
        getvariable('mmlake_principal');

    -- True only for a principal listed in the seed: an unset or unknown principal sees no row.
    create or replace macro governance.principal_known() as (
        select count(*) > 0 from governance.principals
        where principal = getvariable('mmlake_principal')
    );

    -- Most permissive access of the principal's groups to a classification; denied if none.
    create or replace macro governance.access(cls) as (
        select coalesce(
            case max(case a.access when 'full' then 2 when 'masked' then 1 else 0 end)
                when 2 then 'full' when 1 then 'masked' end,
            'denied'
        )
        from governance.access_policies as a
        inner join governance.principals as p on a.group_name = p.group_name
        where p.principal = getvariable('mmlake_principal') and a.classification = cls
    );

    -- The mask named in the column meta, else the classification's default_mask.
    create or replace macro governance.effective_mask(cls, mask) as coalesce(
        mask,
        (select c.default_mask from governance.classifications as c where c.classification = cls),
        'null'
    );

    -- Masks per type family; the view picks the family from the column's type. A mask that
    -- has no form in the type (e.g. redact on a date) gives null.
    create or replace macro governance.mask_string(v, cls, mask) as
        case governance.access(cls)
            when 'full' then v
            when 'masked' then
                case governance.effective_mask(cls, mask)
                    when 'redact' then '[REDACTED]'
                    when 'hash' then sha256(v)
                    when 'last4' then '***' || right(v, 4)
                    when 'year_only' then left(v, 4)
                end
        end;

    create or replace macro governance.mask_date(v, cls, mask) as
        case governance.access(cls)
            when 'full' then v
            when 'masked' then
                case governance.effective_mask(cls, mask)
                    when 'year_only' then make_date(year(v), 1, 1)
                end
        end;

    create or replace macro governance.mask_timestamp(v, cls, mask) as
        case governance.access(cls)
            when 'full' then v
            when 'masked' then
                case governance.effective_mask(cls, mask)
                    when 'year_only' then date_trunc('year', v)
                end
        end;

    -- Numbers, booleans, lists, structs: a masked value has no safe partial form.
    create or replace macro governance.mask_other(v, cls, mask) as
        case governance.access(cls) when 'full' then v end;

    -- Row filters, by patient_key.
    create or replace macro governance.has_research_consent(pk) as
        pk in (
            select c.patient_key from {{ rel.consent }} as c
            where c.consent_status = 'active'
        );

    create or replace macro governance.in_principal_studies(pk) as (
        exists (
            select 1 from governance.group_studies as gs
            inner join governance.principals as p on gs.group_name = p.group_name
            where p.principal = getvariable('mmlake_principal') and gs.study_id = '*'
        )
        or pk in (
            select s.patient_key from {{ rel.study }} as s
            inner join governance.group_studies as gs on s.study_id = gs.study_id
            inner join governance.principals as p on gs.group_name = p.group_name
            where p.principal = getvariable('mmlake_principal')
        )
    );

    -- 28 CFR 202: false for a principal in any group flagged covered_person.
    create or replace macro governance.not_covered_person() as not exists (
        select 1 from governance.principals as p
        inner join governance.groups as g on p.group_name = g.group_name
        where p.principal = getvariable('mmlake_principal')
            and lower(cast(g.covered_person as varchar)) = 'true'
    );

    -- True when the principal's groups have full access to every classification (stewards):
    -- only they may read the bronze/silver/gold schemas directly (mmlake query).
    create or replace macro governance.principal_unrestricted() as (
        select governance.principal_known() and count(*) = 0
        from governance.classifications as c
        where governance.access(c.classification) <> 'full'
    )
{%- endmacro %}

{#- Column and model governance meta of a node; an undeclared column is phi (fail closed). -#}
{% macro local_node_meta(node) -%}
    {%- set meta = {} -%}
    {%- do meta.update(node.get('meta') or {}) -%}
    {%- do meta.update(node.config.get('meta') or {}) -%}
    {{ return(meta) }}
{%- endmacro %}

{% macro local_column_meta(node, column_name) -%}
    {%- set meta = {} -%}
    {%- for name, column in (node.get('columns') or {}).items()
        if name | lower == column_name | lower -%}
        {%- do meta.update(column.get('meta') or {}) -%}
        {%- do meta.update((column.get('config') or {}).get('meta') or {}) -%}
    {%- endfor -%}
    {{ return(meta) }}
{%- endmacro %}

{#- Row filters of a model: declared ones, plus cfr202 whenever the model is classified
    genomic_28cfr202 (a covered person never sees a genomic table, declared or not). -#}
{% macro local_row_filters(node) -%}
    {%- set meta = local_node_meta(node) -%}
    {%- set filters = [] -%}
    {%- for f in (meta.get('row_filters') or []) -%}
        {%- do filters.append(f | lower) -%}
    {%- endfor -%}
    {%- if meta.get('classification') == 'genomic_28cfr202' and 'cfr202' not in filters -%}
        {%- do filters.append('cfr202') -%}
    {%- endif -%}
    {{ return(filters) }}
{%- endmacro %}

{% macro local_mask_family(dtype) -%}
    {%- set t = dtype | upper | trim -%}
    {%- if t == 'VARCHAR' or t.startswith('VARCHAR(') or t == 'TEXT' -%}
        {{ return('string') }}
    {%- elif t == 'DATE' -%}
        {{ return('date') }}
    {%- elif t.startswith('TIMESTAMP') and not t.endswith('[]') -%}
        {{ return('timestamp') }}
    {%- else -%}
        {{ return('other') }}
    {%- endif -%}
{%- endmacro %}

{% macro local_sql_string(value) -%}
    {%- if value is none -%}null{%- else -%}'{{ value | string | replace("'", "''") }}'{%- endif -%}
{%- endmacro %}

{#- The consumer view of one model: every column through its mask, rows through the filters.
    `relation` is read without its database so the view works in any attached name. -#}
{% macro local_secure_view_sql(node, relation) -%}
    {%- set columns = adapter.get_columns_in_relation(relation) -%}
    {%- set filters = local_row_filters(node) -%}
    {%- set column_names = columns | map(attribute='name') | map('lower') | list -%}
    create or replace view consumer.{{ relation.identifier }} as
    select
    {%- for column in columns %}
        {%- set meta = local_column_meta(node, column.name) %}
        {%- set family = local_mask_family(column.dtype) %}
        governance.mask_{{ family }}(
            base.{{ adapter.quote(column.name) }},
            {{ local_sql_string(meta.get('classification', 'phi')) }},
            {{ local_sql_string(meta.get('mask')) }}
        ) as {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ relation.include(database=False) }} as base
    where governance.principal_known()
    {%- for f in filters %}
        {%- if f in ('consent', 'study') and 'patient_key' not in column_names %}
        -- row filter {{ f }} needs patient_key, which this model lacks: no row passes
        and false
        {%- elif f == 'consent' %}
        and governance.has_research_consent(base.patient_key)
        {%- elif f == 'study' %}
        and governance.in_principal_studies(base.patient_key)
        {%- elif f == 'cfr202' %}
        and governance.not_covered_person()
        {%- else %}
        -- unknown row filter {{ f }}: no row passes
        and false
        {%- endif %}
    {%- endfor %}
{%- endmacro %}

{% macro duckdb__apply_governance() -%}
    {%- if execute -%}
        {{ local_secure_view_sql(model, this) }}
    {%- endif -%}
{%- endmacro %}
