{#-
    The governance declaration compiled to Unity Catalog (databricks target).

    - governance_setup (on-run-start): the mask and row-filter functions of the `governance`
      schema (unity_catalog_functions.sql) and the GRANTs of the policy seed;
    - apply_governance (post-hook of silver and gold models): table and column tags, column
      masks and the table's row filter, all derived from model/column `meta`;
    - governance_finalize (on-run-end): the setup again, so that functions created fail-closed
      because their inputs (policy seeds, consent/subject models) did not exist yet at the start
      of a first build become the real ones once the run has built them.

    Everything is plain ALTER/CREATE/GRANT executed by these hooks rather than dbt-databricks'
    `databricks_tags` / `column_mask` / `row_filter` configs: those configs must be written per
    model and per column in the YAML, i.e. a second copy of the declaration that `meta` already
    holds, and `column_mask` needs `flags: use_materialization_v2: true`. Every statement is
    idempotent (CREATE OR REPLACE, SET TAGS, SET MASK, SET ROW FILTER, GRANT).

    The uc_*_statements macros only render SQL from their arguments, so the tests render them
    offline (tests/governance/test_unity_catalog_render.py); the databricks__ hooks add the
    catalog look-ups (policy seed rows, column types, existing masks) and execute.
-#}

{#- ---------- pure renderers ---------- -#}

{#- Groups in the order the policy seed lists them. -#}
{% macro uc_policy_groups(policy) -%}
    {%- set groups = [] -%}
    {%- for row in policy['access'] if row['group_name'] not in groups -%}
        {%- do groups.append(row['group_name']) -%}
    {%- endfor -%}
    {{ return(groups) }}
{%- endmacro %}

{#- A group's access to a classification; a pair the seed does not list is denied. -#}
{% macro uc_group_access(policy, group_name, classification) -%}
    {%- set ns = namespace(access='denied') -%}
    {%- for row in policy['access'] -%}
        {%- if row['group_name'] == group_name and row['classification'] == classification -%}
            {%- set ns.access = row['access'] -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(ns.access) }}
{%- endmacro %}

{#- A column needs a mask when some group does not have full access to its classification. -#}
{% macro uc_classification_is_restricted(policy, classification) -%}
    {%- for group_name in uc_policy_groups(policy) -%}
        {%- if uc_group_access(policy, group_name, classification) != 'full' -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{#- GRANTs of the policy seed: groups with any non-denied access read silver and gold; groups
    with full access to every classification of the vocabulary (the stewards) also read
    bronze and the governance schema. Masks and row filters then decide what they see. -#}
{% macro uc_grant_statements(policy) -%}
    {%- set statements = [] -%}
    {%- set vocabulary = policy['default_masks'].keys() | list -%}
    {%- for group_name in uc_policy_groups(policy) -%}
        {%- set accesses = [] -%}
        {%- for classification in vocabulary -%}
            {%- do accesses.append(uc_group_access(policy, group_name, classification)) -%}
        {%- endfor -%}
        {%- set schemas = [] -%}
        {%- if accesses | reject('equalto', 'denied') | list -%}
            {%- do schemas.extend(['silver', 'gold']) -%}
        {%- endif -%}
        {%- if accesses and accesses | reject('equalto', 'full') | list | length == 0 -%}
            {%- do schemas.extend(['bronze', 'governance']) -%}
        {%- endif -%}
        {%- set grantee = uc_quote(group_name) -%}
        {%- if schemas -%}
            {%- do statements.append(
                'grant use catalog on catalog ' ~ uc_quote(target.database) ~ ' to ' ~ grantee) -%}
        {%- endif -%}
        {%- for schema in schemas -%}
            {%- set fqn = uc_quote(target.database) ~ '.' ~ uc_quote(schema) -%}
            {%- do statements.append('grant use schema on schema ' ~ fqn ~ ' to ' ~ grantee) -%}
            {%- do statements.append('grant select on schema ' ~ fqn ~ ' to ' ~ grantee) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}

{#- Everything governance_setup runs: functions, then grants (when the policy is loaded). -#}
{% macro uc_setup_statements(policy=none, missing=[]) -%}
    {%- set statements = uc_function_statements(missing) -%}
    {%- if policy is not none -%}
        {%- do statements.extend(uc_grant_statements(policy)) -%}
    {%- endif -%}
    {{ return(statements) }}
{%- endmacro %}

{% macro uc_node_meta(node) -%}
    {%- set config_meta = (node.get('config') or {}).get('meta') or {} -%}
    {{ return(config_meta if config_meta else (node.get('meta') or {})) }}
{%- endmacro %}

{% macro uc_column_meta(column) -%}
    {%- set meta = column.get('meta') or {} -%}
    {{ return(meta if meta else ((column.get('config') or {}).get('meta') or {})) }}
{%- endmacro %}

{% macro uc_tags_clause(tags) -%}
    {%- set pairs = [] -%}
    {%- for key, value in tags.items() if value is not none -%}
        {%- do pairs.append("'" ~ key ~ "' = '" ~ (value | string | replace("'", "\\'")) ~ "'") -%}
    {%- endfor -%}
    {{ return('set tags (' ~ pairs | join(', ') ~ ')') }}
{%- endmacro %}

{#- The statements governing one built model.
    relation: the model's relation (`this`); node: the graph node (`model`);
    column_types: column name -> type as the catalog reports it (YAML data_type when absent);
    policy: {'access': [{group_name, classification, access}], 'default_masks': {class: mask}}.
    Returns a mapping: tags (table and column tags), masks ({column: SET MASK statement}),
    row_filter (statement or none) and functions (per-type null masks of array/map/struct
    columns, created before use). -#}
{% macro uc_model_governance(relation, node, column_types, policy) -%}
    {%- set meta = uc_node_meta(node) -%}
    {%- set table = relation.render() -%}
    {%- set label = node.get('name') or relation.identifier -%}
    {%- set vocabulary = policy['default_masks'] -%}
    {#- Unclassified or off-vocabulary counts as phi (fail closed); the coverage check
        (coverage.sql) fails the build for it anyway. -#}
    {%- set model_classification = meta.get('classification') -%}
    {%- if model_classification not in vocabulary -%}
        {%- set model_classification = 'phi' -%}
    {%- endif -%}
    {%- set result = {'tags': [], 'masks': {}, 'row_filter': none, 'functions': []} -%}
    {%- do result['tags'].append('alter table ' ~ table ~ ' ' ~ uc_tags_clause(
        {'classification': model_classification, 'owner': meta.get('owner')})) -%}

    {%- set declared = {} -%}
    {%- for key, column in node.get('columns', {}).items() -%}
        {%- do declared.update({(column.get('name') or key) | lower: column}) -%}
    {%- endfor -%}
    {%- set types = {} -%}
    {%- for name, column in declared.items() -%}
        {%- do types.update({name: column.get('data_type')}) -%}
    {%- endfor -%}
    {#- A column of the built table that the YAML does not declare is governed as phi. -#}
    {%- for name, data_type in (column_types or {}).items() -%}
        {%- if name | lower not in declared -%}
            {%- do declared.update({name | lower: {'name': name, 'meta': {'classification': 'phi'}}}) -%}
        {%- endif -%}
        {%- do types.update({name | lower: data_type}) -%}
    {%- endfor -%}

    {%- for name, column in declared.items() -%}
        {%- set column_meta = uc_column_meta(column) -%}
        {%- set classification = column_meta.get('classification') -%}
        {%- if classification not in vocabulary -%}
            {%- set classification = 'phi' -%}
        {%- endif -%}
        {%- set target_column = table ~ ' alter column ' ~ uc_quote(column.get('name') or name) -%}
        {%- do result['tags'].append('alter table ' ~ target_column ~ ' '
            ~ uc_tags_clause({'classification': classification})) -%}
        {%- if uc_classification_is_restricted(policy, classification) -%}
            {%- if not types.get(name) -%}
                {{ exceptions.raise_compiler_error(
                    "governance: type of column " ~ name ~ " of " ~ label ~ " unknown; cannot mask it") }}
            {%- endif -%}
            {%- set kind = uc_type_family(types[name]) -%}
            {%- set mask = column_meta.get('mask') or policy['default_masks'][classification] -%}
            {%- set function = uc_mask_function_name(mask, kind['family']) -%}
            {%- if kind['family'] not in uc_scalar_families() -%}
                {%- set ddl = uc_mask_function_sql('null', kind['family'], kind['sql_type']) -%}
                {%- if ddl not in result['functions'] -%}
                    {%- do result['functions'].append(ddl) -%}
                {%- endif -%}
            {%- endif -%}
            {%- do result['masks'].update({column.get('name') or name:
                'alter table ' ~ target_column ~ ' set mask ' ~ uc_governance_fqn(function)
                ~ " using columns ('" ~ classification ~ "')"}) -%}
        {%- endif -%}
    {%- endfor -%}

    {#- A covered person never sees a genomic table, declared or not. -#}
    {%- set declared_filters = uc_normalize_row_filters(meta.get('row_filters')) -%}
    {%- if model_classification == 'genomic_28cfr202' -%}
        {%- set declared_filters = declared_filters + ['cfr202'] -%}
    {%- endif -%}
    {%- set filters = uc_normalize_row_filters(declared_filters) -%}
    {%- if filters -%}
        {%- set on = '' -%}
        {%- if uc_row_filter_takes_patient_key(filters) -%}
            {%- if 'patient_key' not in types -%}
                {{ exceptions.raise_compiler_error(
                    "governance: " ~ label ~ " declares row_filters " ~ filters
                    ~ " but has no patient_key column") }}
            {%- endif -%}
            {%- set on = uc_quote('patient_key') -%}
        {%- endif -%}
        {%- do result.update({'row_filter': 'alter table ' ~ table ~ ' set row filter '
            ~ uc_governance_fqn(uc_row_filter_function_name(filters)) ~ ' on (' ~ on ~ ')'}) -%}
    {%- endif -%}
    {{ return(result) }}
{%- endmacro %}

{#- The same as one ordered list: functions, tags, masks, row filter. -#}
{% macro uc_model_statements(relation, node, column_types, policy) -%}
    {%- set governed = uc_model_governance(relation, node, column_types, policy) -%}
    {%- set statements = governed['functions'] + governed['tags'] -%}
    {%- do statements.extend(governed['masks'].values() | list) -%}
    {%- if governed['row_filter'] -%}
        {%- do statements.append(governed['row_filter']) -%}
    {%- endif -%}
    {{ return(statements) }}
{%- endmacro %}

{#- ---------- runtime (needs the workspace) ---------- -#}

{#- The policy seeds as uc_model_governance expects them, or none before `dbt seed`. -#}
{% macro uc_load_policy() -%}
    {%- for name in ['access_policies', 'classifications'] -%}
        {%- if adapter.get_relation(database=target.database, schema='governance', identifier=name) is none -%}
            {{ return(none) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set access = [] -%}
    {%- for row in run_query('select group_name, classification, access from '
            ~ uc_governance_fqn('access_policies')) -%}
        {%- do access.append({'group_name': row[0], 'classification': row[1], 'access': row[2]}) -%}
    {%- endfor -%}
    {%- set default_masks = {} -%}
    {%- for row in run_query('select classification, default_mask from '
            ~ uc_governance_fqn('classifications') ~ ' order by sensitivity_rank desc') -%}
        {%- do default_masks.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {{ return({'access': access, 'default_masks': default_masks}) }}
{%- endmacro %}

{#- Inputs of the governance functions that the catalog does not hold yet. -#}
{% macro uc_missing_inputs() -%}
    {%- set missing = [] -%}
    {%- set inputs = [('governance', 'access_policies')] -%}
    {%- for name in uc_row_filter_order() -%}
        {%- do inputs.extend(uc_row_filter_inputs(name)) -%}
    {%- endfor -%}
    {%- for schema, name in inputs | unique -%}
        {%- if adapter.get_relation(database=target.database, schema=schema, identifier=name) is none -%}
            {%- do missing.append((schema, name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(missing) }}
{%- endmacro %}

{% macro uc_run_statements(statements) -%}
    {%- for sql in statements -%}
        {%- do run_query(sql) -%}
    {%- endfor -%}
{%- endmacro %}

{% macro databricks__governance_setup() -%}
    {%- if execute -%}
        {%- do run_query('create schema if not exists ' ~ uc_quote(target.database) ~ '.' ~ uc_quote('governance')) -%}
        {%- set missing = uc_missing_inputs() -%}
        {%- if missing -%}
            {{ log("governance: not in the catalog yet, functions reading them start fail-closed: "
                ~ missing, info=true) }}
        {%- endif -%}
        {%- do uc_run_statements(uc_setup_statements(uc_load_policy(), missing)) -%}
    {%- endif -%}
{%- endmacro %}

{% macro databricks__apply_governance() -%}
    {%- if execute -%}
        {%- set policy = uc_load_policy() -%}
        {%- if policy is none -%}
            {{ exceptions.raise_compiler_error(
                "governance: governance.access_policies is missing; run `dbt seed --select path:seeds/governance` first") }}
        {%- endif -%}
        {%- set column_types = {} -%}
        {%- for column in adapter.get_columns_in_relation(this) -%}
            {%- do column_types.update({column.name: column.dtype}) -%}
        {%- endfor -%}
        {%- set governed = uc_model_governance(this, model, column_types, policy) -%}
        {#- Masks outlive CREATE OR REPLACE: drop those of columns no longer restricted. -#}
        {%- set wanted = governed['masks'].keys() | map('lower') | list -%}
        {%- for row in fetch_column_masks(this) if row[0] | lower not in wanted -%}
            {%- do run_query('alter table ' ~ this.render() ~ ' alter column ' ~ uc_quote(row[0]) ~ ' drop mask') -%}
        {%- endfor -%}
        {%- do uc_run_statements(uc_model_statements(this, model, column_types, policy)) -%}
    {%- endif -%}
{%- endmacro %}

{% macro databricks__governance_finalize(results) -%}
    {%- if execute -%}
        {%- do databricks__governance_setup() -%}
    {%- endif -%}
{%- endmacro %}

{#- ---------- offline rendering for tests and reviews ---------- -#}

{#- JSON of the statements governing a model, for `dbt compile --inline`:
    {{ uc_render_model_governance('features_notes', policy_json, column_types_json) }} -#}
{% macro uc_render_model_governance(model_name, policy_json, column_types_json='{}') -%}
    {%- set matches = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', model_name) | list -%}
    {%- if not matches -%}
        {{ exceptions.raise_compiler_error("governance: no model " ~ model_name) }}
    {%- endif -%}
    {%- set node = matches[0] -%}
    {%- set relation = api.Relation.create(
        database=node.database, schema=node.schema, identifier=node.alias, type='table') -%}
    {{- tojson(uc_model_statements(relation, node, fromjson(column_types_json), fromjson(policy_json))) -}}
{%- endmacro %}

{% macro uc_render_setup(policy_json) -%}
    {{- tojson(uc_setup_statements(fromjson(policy_json))) -}}
{%- endmacro %}
