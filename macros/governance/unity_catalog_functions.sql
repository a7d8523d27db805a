{#-
    Unity Catalog functions of the `governance` schema, compiled from the declaration.

    Mask functions, one per mask x type family: mask_<mask>_<family>(v <type>,
    classification_name STRING). The column's classification is bound as a constant through
    `SET MASK ... USING COLUMNS ('<classification>')`, so one function serves every column of
    that mask and type. The invoker's access to the classification is the most permissive
    access over the account groups it belongs to (full > masked > denied), read from the
    policy seed governance.access_policies with is_account_group_member(); no group = denied.

    Row filter functions, one per combination of the row filters a model may declare
    (Unity Catalog allows a single row filter per table, so a model with `row_filters:
    [consent, study]` gets row_filter_consent_study). Functions with consent or study take the
    row's patient_key; cfr202 alone takes nothing.

    Parameter names (v, classification_name, row_patient_key) deliberately differ from every
    column of the tables the bodies read: inside a SQL UDF a column name shadows a parameter.

    Each macro here only renders SQL (no connection), so tests render it offline; the
    runtime wrappers that execute it are in unity_catalog.sql.
-#}

{#- Type family -> the Databricks type of the mask function's value and result. Column types
    outside these (arrays, maps, structs) get a per-type null mask, see uc_type_family. -#}
{% macro uc_scalar_families() -%}
    {{ return({
        'string': 'STRING', 'date': 'DATE', 'timestamp': 'TIMESTAMP', 'int': 'INT',
        'bigint': 'BIGINT', 'double': 'DOUBLE', 'boolean': 'BOOLEAN',
        'decimal': 'DECIMAL(38, 18)',
    }) }}
{%- endmacro %}

{#- The masks the vocabulary allows (meta `mask:` and default_mask of classifications.csv). -#}
{% macro uc_masks() -%}
    {{ return(['redact', 'hash', 'year_only', 'last4', 'null']) }}
{%- endmacro %}

{#- Row filters in the order their names are joined into a function name. -#}
{% macro uc_row_filter_order() -%}
    {{ return(['consent', 'study', 'cfr202']) }}
{%- endmacro %}

{#- Family of a column type as Databricks or the YAML writes it: 'varchar' -> string,
    'timestamp_ntz' -> timestamp, 'decimal(10,2)' -> decimal, 'array<string>' -> a family of
    its own named after the type (array_string), whose SQL type is the type itself. -#}
{% macro uc_type_family(data_type) -%}
    {%- set t = (data_type or '') | trim | lower -%}
    {%- set base = t.split('(')[0].split('<')[0] | trim -%}
    {%- set aliases = {
        'string': 'string', 'varchar': 'string', 'char': 'string', 'text': 'string',
        'date': 'date', 'timestamp': 'timestamp', 'timestamp_ntz': 'timestamp',
        'timestamp_ltz': 'timestamp', 'timestamptz': 'timestamp',
        'int': 'int', 'integer': 'int', 'smallint': 'int', 'tinyint': 'int',
        'bigint': 'bigint', 'long': 'bigint', 'double': 'double', 'float': 'double',
        'real': 'double', 'boolean': 'boolean', 'bool': 'boolean',
        'decimal': 'decimal', 'numeric': 'decimal', 'dec': 'decimal',
    } -%}
    {%- if base in aliases -%}
        {{ return({'family': aliases[base], 'sql_type': uc_scalar_families()[aliases[base]]}) }}
    {%- elif base in ('array', 'map', 'struct') -%}
        {%- set family = modules.re.sub('[^a-z0-9]+', '_', t) | trim('_') -%}
        {{ return({'family': family, 'sql_type': t.upper()}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "governance: no Unity Catalog mask for column type '" ~ data_type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The masked form of v, or none when the mask has no meaning for the family (the column is
    then nulled, as with the `null` mask). -#}
{% macro uc_mask_expression(mask, family) -%}
    {%- set forms = {
        ('redact', 'string'): "'[REDACTED]'",
        ('hash', 'string'): "sha2(v, 256)",
        ('last4', 'string'): "concat('***', right(v, 4))",
        ('year_only', 'string'): "left(v, 4)",
        ('year_only', 'date'): "trunc(v, 'YEAR')",
        ('year_only', 'timestamp'): "date_trunc('YEAR', v)",
    } -%}
    {{ return(forms.get((mask, family))) }}
{%- endmacro %}

{#- Function implementing `mask` on a column of `family`: the null mask where the mask has
    no form for that type (redact of a date, hash of a double...). -#}
{% macro uc_mask_function_name(mask, family) -%}
    {%- if mask not in uc_masks() -%}
        {{ exceptions.raise_compiler_error("governance: unknown mask '" ~ mask ~ "'") }}
    {%- endif -%}
    {%- set effective = mask if uc_mask_expression(mask, family) is not none else 'null' -%}
    {{ return('mask_' ~ effective ~ '_' ~ family) }}
{%- endmacro %}

{% macro uc_quote(name) -%}
    {{ return('`' ~ (name | replace('`', '``')) ~ '`') }}
{%- endmacro %}

{#- `catalog`.`schema`.`name` in the target's catalog. -#}
{% macro uc_fqn(schema, name) -%}
    {{ return(uc_quote(target.database) ~ '.' ~ uc_quote(schema) ~ '.' ~ uc_quote(name)) }}
{%- endmacro %}

{% macro uc_governance_fqn(name) -%}
    {{ return(uc_fqn('governance', name)) }}
{%- endmacro %}

{#- 2 = full, 1 = masked, 0 = denied: the invoker's best access to classification_name. -#}
{% macro uc_access_level_sql() -%}
(
        select coalesce(max(case p.access when 'full' then 2 when 'masked' then 1 else 0 end), 0)
        from {{ uc_governance_fqn('access_policies') }} as p
        where p.classification = classification_name and is_account_group_member(p.group_name)
    )
{%- endmacro %}

{#- CREATE OR REPLACE FUNCTION for one mask x family. fail_closed renders a body that nulls
    every value, for a catalog where the policy seed is not loaded yet. -#}
{% macro uc_mask_function_sql(mask, family, sql_type, fail_closed=false) -%}
    {%- set name = uc_mask_function_name(mask, family) -%}
    {%- set form = uc_mask_expression(mask, family) -%}
create or replace function {{ uc_governance_fqn(name) }}(v {{ sql_type }}, classification_name STRING)
returns {{ sql_type }}
comment 'mmlake governance: {{ name }} of {{ family }} columns; value, masked form or null by the access of the invoking principal to the classification (access_policies).'
{% if fail_closed -%}
return cast(null as {{ sql_type }})
{%- else -%}
return case {{ uc_access_level_sql() }}
    when 2 then v
    when 1 then {{ form if form is not none else 'cast(null as ' ~ sql_type ~ ')' }}
    else cast(null as {{ sql_type }})
end
{%- endif %}
{%- endmacro %}

{#- Every mask function of the scalar families, deduplicated by name. -#}
{% macro uc_mask_functions_sql(fail_closed=false) -%}
    {%- set statements = [] -%}
    {%- set seen = [] -%}
    {%- for family, sql_type in uc_scalar_families().items() -%}
        {%- for mask in uc_masks() -%}
            {%- set name = uc_mask_function_name(mask, family) -%}
            {%- if name not in seen -%}
                {%- do seen.append(name) -%}
                {%- do statements.append(uc_mask_function_sql(mask, family, sql_type, fail_closed)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}

{#- row_filters as declared -> the canonical ordered, deduplicated list. -#}
{% macro uc_normalize_row_filters(row_filters) -%}
    {%- set declared = [row_filters] if row_filters is string else (row_filters or []) -%}
    {%- for name in declared if name not in uc_row_filter_order() -%}
        {{ exceptions.raise_compiler_error("governance: unknown row filter '" ~ name ~ "'") }}
    {%- endfor -%}
    {{ return(uc_row_filter_order() | select('in', declared) | list) }}
{%- endmacro %}

{% macro uc_row_filter_function_name(filters) -%}
    {{ return('row_filter_' ~ (uc_normalize_row_filters(filters) | join('_'))) }}
{%- endmacro %}

{#- Whether the filter function takes the row's patient_key. -#}
{% macro uc_row_filter_takes_patient_key(filters) -%}
    {{ return('consent' in filters or 'study' in filters) }}
{%- endmacro %}

{#- The predicate of one row filter. consent: the patient has an active research consent;
    study: one of the caller's groups is enrolled to every study ('*'), or the patient is
    enrolled in a study one of them is enrolled to; cfr202: the caller is in no covered-person group (28 CFR 202). -#}
{% macro uc_row_filter_predicate(name) -%}
    {%- if name == 'consent' -%}
exists (
        select 1 from {{ uc_fqn('silver', 'stg_ehr__research_consents') }} as c
        where c.patient_key = row_patient_key and c.consent_status = 'active'
    )
    {%- elif name == 'study' -%}
(
        exists (
            select 1 from {{ uc_governance_fqn('group_studies') }} as g
            where g.study_id = '*' and is_account_group_member(g.group_name)
        )
        or exists (
            select 1
            from {{ uc_fqn('silver', 'stg_ehr__research_subjects') }} as s
            inner join {{ uc_governance_fqn('group_studies') }} as g on s.study_id = g.study_id
            where s.patient_key = row_patient_key and is_account_group_member(g.group_name)
        )
    )
    {%- elif name == 'cfr202' -%}
not exists (
        select 1 from {{ uc_governance_fqn('groups') }} as g
        where lower(cast(g.covered_person as STRING)) = 'true'
            and is_account_group_member(g.group_name)
    )
    {%- endif -%}
{%- endmacro %}

{#- Tables each row filter reads: (schema, name). -#}
{% macro uc_row_filter_inputs(name) -%}
    {{ return({
        'consent': [('silver', 'stg_ehr__research_consents')],
        'study': [('silver', 'stg_ehr__research_subjects'), ('governance', 'group_studies')],
        'cfr202': [('governance', 'groups')],
    }[name]) }}
{%- endmacro %}

{% macro uc_row_filter_function_sql(filters, fail_closed=false) -%}
    {%- set filters = uc_normalize_row_filters(filters) -%}
    {%- set args = 'row_patient_key STRING' if uc_row_filter_takes_patient_key(filters) else '' -%}
create or replace function {{ uc_governance_fqn(uc_row_filter_function_name(filters)) }}({{ args }})
returns BOOLEAN
comment 'mmlake governance row filter: {{ filters | join(" and ") }}.'
{% if fail_closed -%}
return false
{%- else -%}
return
    {% for name in filters -%}
    {{ uc_row_filter_predicate(name) }}{% if not loop.last %}
    and {% endif %}
    {%- endfor %}
{%- endif %}
{%- endmacro %}

{#- Every non-empty combination of row filters, as ordered lists, shortest first. -#}
{% macro uc_row_filter_combinations() -%}
    {%- set order = uc_row_filter_order() -%}
    {%- set combos = [] -%}
    {%- for size in range(1, (order | length) + 1) -%}
        {%- for bits in range(1, 2 ** (order | length)) -%}
            {%- set combo = [] -%}
            {%- for name in order -%}
                {%- if (bits // (2 ** loop.index0)) % 2 == 1 -%}
                    {%- do combo.append(name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if combo | length == size -%}
                {%- do combos.append(combo) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(combos) }}
{%- endmacro %}

{#- All function DDL. `missing` lists the (schema, name) inputs not in the catalog yet
    (first build): functions reading them are created fail-closed, and governance_finalize
    recreates them once the run has built the inputs. -#}
{% macro uc_function_statements(missing=[]) -%}
    {%- set missing_names = [] -%}
    {%- for schema, name in missing -%}
        {%- do missing_names.append(schema ~ '.' ~ name) -%}
    {%- endfor -%}
    {%- set statements = uc_mask_functions_sql('governance.access_policies' in missing_names) -%}
    {%- for combo in uc_row_filter_combinations() -%}
        {%- set ns = namespace(closed=false) -%}
        {%- for name in combo -%}
            {%- for schema, table in uc_row_filter_inputs(name) -%}
                {%- if (schema ~ '.' ~ table) in missing_names -%}
                    {%- set ns.closed = true -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- do statements.append(uc_row_filter_function_sql(combo, ns.closed)) -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}
