{#-
    on-run-end of the local emulation: rebuild governance.classification_registry and
    governance.column_lineage from the graph and the warehouse, and give every governed model
    that has no consumer view yet (a Python model runs no post-hook) its secure view.

    The audit of the invocation is written by mmlake.dbt_runner from run_results.json after
    dbt returns (DuckDB cannot write Delta; docs/governance.md).
-#}

{#- Physical columns (name -> dtype) of a relation, or {} when it does not exist. -#}
{% macro local_physical_columns(schema, identifier) -%}
    {%- set relation = adapter.get_relation(database=target.database, schema=schema,
                                            identifier=identifier) -%}
    {%- set found = {} -%}
    {%- if relation is not none -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do found.update({column.name: column.dtype}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return({'relation': relation, 'columns': found}) }}
{%- endmacro %}

{#- Every governed node: silver/gold models, bronze sources, seeds. -#}
{% macro local_governed_nodes() -%}
    {%- set nodes = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.config.schema in ('silver', 'gold') -%}
            {%- do nodes.append(node) -%}
        {%- elif node.resource_type == 'seed' -%}
            {%- do nodes.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for node in graph.sources.values() -%}
        {%- do nodes.append(node) -%}
    {%- endfor -%}
    {{ return(nodes) }}
{%- endmacro %}

{% macro duckdb__governance_finalize(results) -%}
    {%- if execute -%}
        {%- set registry_rows = [] -%}
        {%- set columns_by_node = {} -%}
        {%- for node in local_governed_nodes() -%}
            {%- set identifier = node.get('identifier') or node.get('alias') or node.name -%}
            {%- set schema = node.schema -%}
            {%- set physical = local_physical_columns(schema, identifier) -%}
            {%- set meta = local_node_meta(node) -%}
            {%- set filters = local_row_filters(node) if node.resource_type == 'model' else [] -%}
            {%- set names = [] -%}
            {%- for name in (node.get('columns') or {}).keys() -%}
                {%- do names.append(name) -%}
            {%- endfor -%}
            {%- for name in physical.columns.keys() -%}
                {%- if name | lower not in names | map('lower') | list -%}
                    {%- do names.append(name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set node_columns = {} -%}
            {%- for name in names -%}
                {%- set cmeta = local_column_meta(node, name) -%}
                {%- set classification = cmeta.get('classification')
                    or governance_dynamic_classification(node, name) -%}
                {%- do node_columns.update({name | lower: classification or 'phi'}) -%}
                {%- set row = [
                    local_sql_string(node.resource_type),
                    local_sql_string(schema),
                    local_sql_string(schema ~ '.' ~ identifier),
                    local_sql_string(node.unique_id),
                    local_sql_string(name),
                    local_sql_string(physical.columns.get(name)
                        or (node.columns.get(name) or {}).get('data_type')),
                    local_sql_string(classification or 'phi'),
                    'true' if classification else 'false',
                    local_sql_string(cmeta.get('mask')),
                    local_sql_string(filters | join(',') if filters else none),
                    local_sql_string(meta.get('owner')),
                    local_sql_string(meta.get('classification')),
                    'true' if physical.relation is not none else 'false',
                ] -%}
                {%- do registry_rows.append('(' ~ row | join(', ') ~ ')') -%}
            {%- endfor -%}
            {%- do columns_by_node.update({node.unique_id: node_columns}) -%}
            {%- if node.resource_type == 'model' and physical.relation is not none
                  and adapter.get_relation(database=target.database, schema='consumer',
                                           identifier=identifier) is none -%}
                {%- call statement('governance_view_' ~ identifier) -%}
                    {{ local_secure_view_sql(node, physical.relation) }}
                {%- endcall -%}
            {%- endif -%}
        {%- endfor -%}

        {%- call statement('governance_registry') -%}
            create or replace table governance.classification_registry as
            with declared (
                node_type, layer, relation_name, unique_id, column_name, data_type,
                classification, declared, mask, row_filters, owner, model_classification,
                built
            ) as (
                values
                {{ registry_rows | join(',\n') }}
            )
            select
                d.node_type, d.layer, d.relation_name, d.unique_id, d.column_name,
                d.data_type, d.classification, d.declared,
                coalesce(d.mask, c.default_mask) as mask,
                d.row_filters, d.owner, d.model_classification, d.built,
                c.sensitivity_rank,
                c.classification is not null as in_vocabulary
            from declared as d
            left join governance.classifications as c on d.classification = c.classification
        {%- endcall -%}

        {#- Lineage: same-named columns of direct parents (a heuristic: dbt does not parse
            column-level lineage; renamed or computed columns are not traced). -#}
        {%- set lineage_rows = [] -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.unique_id in columns_by_node -%}
            {%- for column, classification in columns_by_node[node.unique_id].items() -%}
                {%- for parent in node.depends_on.nodes
                    if parent in columns_by_node and column in columns_by_node[parent] -%}
                    {%- do lineage_rows.append('(' ~ [
                        local_sql_string(node.unique_id), local_sql_string(column),
                        local_sql_string(classification), local_sql_string(parent),
                        local_sql_string(column),
                        local_sql_string(columns_by_node[parent][column])
                    ] | join(', ') ~ ')') -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- call statement('governance_lineage') -%}
            create or replace table governance.column_lineage (
                unique_id varchar, column_name varchar, classification varchar,
                upstream_unique_id varchar, upstream_column varchar,
                upstream_classification varchar
            );
            {%- if lineage_rows %}
            insert into governance.column_lineage values
            {{ lineage_rows | join(',\n') }}
            {%- endif %}
        {%- endcall -%}
        {#- Rows of each relation this invocation built: dbt-duckdb reports no rows_affected,
            so mmlake.dbt_runner takes them from here for the audit of the run. -#}
        {%- set counts = [] -%}
        {%- for result in results
            if result.node.resource_type in ('model', 'seed', 'snapshot')
            and result.status | string | lower == 'success' -%}
            {%- set rel = adapter.get_relation(database=result.node.database,
                                               schema=result.node.schema,
                                               identifier=result.node.alias) -%}
            {%- if rel is not none -%}
                {%- do counts.append("select " ~ local_sql_string(result.node.unique_id)
                    ~ " as unique_id, (select count(*) from " ~ rel.include(database=False)
                    ~ ") as row_count") -%}
            {%- endif -%}
        {%- endfor -%}
        {%- call statement('governance_run_rows') -%}
            create or replace table governance.dbt_run_rows as
            select {{ local_sql_string(invocation_id) }} as invocation_id, unique_id, row_count
            from (
                {{ counts | join('\nunion all ') if counts
                   else 'select null::varchar as unique_id, null::bigint as row_count' }}
            )
            where unique_id is not null
        {%- endcall -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
{%- endmacro %}
