{#-
    Classification coverage: the build fails when any column of any model, seed or source
    lacks `meta.classification`, or names a classification (or mask) outside the vocabulary.

    Run it as an on-run-start hook, after register_bronze_sources (so bronze relations exist):
        - "{{ multimodal_lakehouse.assert_classification_coverage() }}"
    or on its own: `dbt run-operation assert_classification_coverage`.

    What it checks, every node of this project (models except ephemeral ones, seeds, sources):
    - every column declared in YAML has meta.classification in the vocabulary and, when it
      names one, a meta.mask among the masks;
    - the node itself declares at least one column; its own meta.classification (when set)
      is in the vocabulary and is its most sensitive column's; its row_filters are known
      ones, and consent/study filters need a patient_key column;
    - when the node's relation exists in the warehouse, every real column is declared in its
      YAML (a silver model without a contract can select more columns than it documents),
      or matched by one of its `meta.dynamic_columns` prefixes (bronze tables whose columns
      follow their input, such as a VCF's INFO_* fields).
      Relations of nodes this invocation is about to rebuild are skipped (they may be stale);
      assert_model_columns_classified() checks a model's fresh relation in its post-hook.

    Vocabulary: seeds/governance/classifications.csv is the source of truth, but hooks run
    before seeds are loaded on a fresh build and Jinja cannot read files, so the check uses
    var('governance_classifications') (default below: the seed's classifications, most
    sensitive first) and, whenever the seed's relation exists, fails if the loaded seed
    ordered by sensitivity_rank and the var disagree.
    tests/governance/test_classification_coverage.py also compares the default with the CSV.
-#}
{% macro governance_classification_vocabulary() -%}
    {{ return(var('governance_classifications', [
        'phi', 'genomic_28cfr202', 'pii', 'study_id', 'clinical', 'derived', 'public'
    ])) }}
{%- endmacro %}

{% macro governance_mask_vocabulary() -%}
    {{ return(var('governance_masks', ['redact', 'hash', 'year_only', 'last4', 'null'])) }}
{%- endmacro %}

{% macro governance_row_filter_vocabulary() -%}
    {{ return(['consent', 'study', 'cfr202']) }}
{%- endmacro %}

{#- "model stg_ehr__patients", "source ehr.patients", "seed cancer_types". -#}
{% macro governance_node_label(node) -%}
    {%- if node.resource_type == 'source' -%}
        {{ return('source ' ~ node.source_name ~ '.' ~ node.name) }}
    {%- else -%}
        {{ return(node.resource_type ~ ' ' ~ node.name) }}
    {%- endif -%}
{%- endmacro %}

{#- Node meta from `meta:` and from `config: {meta: ...}` (dbt accepts both). -#}
{% macro governance_node_meta(node) -%}
    {%- set merged = {} -%}
    {%- do merged.update(node.get('meta') or {}) -%}
    {%- do merged.update((node.get('config') or {}).get('meta') or {}) -%}
    {{ return(merged) }}
{%- endmacro %}

{#- Column meta from `meta:` and from `config: {meta: ...}` (dbt accepts both). -#}
{% macro governance_column_meta(column) -%}
    {%- set merged = {} -%}
    {%- do merged.update((column.get('config') or {}).get('meta') or {}) -%}
    {%- do merged.update(column.get('meta') or {}) -%}
    {{ return(merged) }}
{%- endmacro %}

{#-
    Classification of a column the YAML does not list, from the node's
    `meta.dynamic_columns`: entries {prefix, classification} for tables whose columns follow
    their input (a VCF header's INFO_* fields, a device's new payload fields). The first entry
    whose prefix starts the name (case-insensitive) classifies it; an empty prefix matches any
    column. None when no entry matches.
-#}
{% macro governance_dynamic_classification(node, column_name) -%}
    {%- for entry in governance_node_meta(node).get('dynamic_columns') or [] -%}
        {%- if (column_name | lower).startswith((entry.get('prefix') or '') | lower) -%}
            {{ return(entry.get('classification')) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- Problems of the YAML declaration of one node, as messages naming node.column. -#}
{% macro governance_declaration_errors(node, vocabulary, masks) -%}
    {%- set errors = [] -%}
    {%- set label = governance_node_label(node) -%}
    {%- if not node.columns -%}
        {%- do errors.append(label ~ ': declares no columns, so none is classified') -%}
    {%- endif -%}
    {%- for name, column in node.columns.items() -%}
        {%- set meta = governance_column_meta(column) -%}
        {%- set where = label ~ '.' ~ name -%}
        {%- if 'classification' not in meta or meta['classification'] is none -%}
            {%- do errors.append(where ~ ': no meta.classification') -%}
        {%- elif meta['classification'] not in vocabulary -%}
            {%- do errors.append(where ~ ": classification '" ~ meta['classification']
                ~ "' is not in the vocabulary " ~ vocabulary | join(', ')) -%}
        {%- endif -%}
        {%- if 'mask' in meta and meta['mask'] not in masks -%}
            {%- do errors.append(where ~ ": mask '" ~ meta['mask'] ~ "' is not one of "
                ~ masks | join(', ') ~ " (quote \"null\" in YAML)") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set node_meta = governance_node_meta(node) -%}
    {%- set declared = node_meta.get('classification') -%}
    {%- if declared is not none and declared not in vocabulary -%}
        {%- do errors.append(label ~ ": model classification '" ~ declared
            ~ "' is not in the vocabulary") -%}
    {%- elif declared is not none -%}
        {#- The vocabulary is ordered most sensitive first: the lowest index wins. -#}
        {%- set ranks = [] -%}
        {%- for column in node.columns.values() -%}
            {%- set cls = governance_column_meta(column).get('classification') -%}
            {%- if cls in vocabulary -%}{%- do ranks.append(vocabulary.index(cls)) -%}{%- endif -%}
        {%- endfor -%}
        {%- if ranks and vocabulary[ranks | min] != declared -%}
            {%- do errors.append(label ~ ": model classification '" ~ declared
                ~ "' is not its most sensitive column's ('" ~ vocabulary[ranks | min] ~ "')") -%}
        {%- endif -%}
    {%- endif -%}
    {%- for entry in node_meta.get('dynamic_columns') or [] -%}
        {%- if entry is not mapping or entry.get('classification') not in vocabulary -%}
            {%- do errors.append(label ~ ": dynamic_columns entry " ~ entry
                ~ " needs a prefix and a classification in the vocabulary") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set column_names = node.columns.keys() | map('lower') | list -%}
    {%- for row_filter in node_meta.get('row_filters') or [] -%}
        {%- if row_filter not in governance_row_filter_vocabulary() -%}
            {%- do errors.append(label ~ ": unknown row filter '" ~ row_filter ~ "'") -%}
        {%- elif row_filter in ('consent', 'study') and 'patient_key' not in column_names -%}
            {%- do errors.append(label ~ ": row filter '" ~ row_filter
                ~ "' needs a patient_key column") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(errors) }}
{%- endmacro %}

{#- Real columns of an existing relation that its node's YAML does not declare. -#}
{% macro governance_undeclared_column_errors(node, relation) -%}
    {%- set errors = [] -%}
    {%- set declared = node.columns.keys() | map('lower') | list -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower not in declared
            and governance_dynamic_classification(node, column.name) is none -%}
            {%- do errors.append(governance_node_label(node) ~ '.' ~ column.name
                ~ ': column of ' ~ relation ~ ' is not declared in YAML, so not classified') -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(errors) }}
{%- endmacro %}

{% macro governance_node_relation(node) -%}
    {%- set identifier = node.identifier if node.resource_type == 'source' else node.alias -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema,
                                   identifier=identifier)) }}
{%- endmacro %}

{#- The loaded classifications seed must hold exactly the vocabulary the check uses. -#}
{% macro governance_vocabulary_seed_errors(vocabulary) -%}
    {%- set errors = [] -%}
    {%- set seed = graph.nodes.get('seed.' ~ project_name ~ '.classifications') -%}
    {%- if seed is not none -%}
        {%- set relation = governance_node_relation(seed) -%}
        {%- if relation is not none -%}
            {%- set loaded = run_query('select classification from ' ~ relation
                ~ ' order by sensitivity_rank desc').columns[0].values() | list -%}
            {%- if loaded != vocabulary -%}
                {%- do errors.append('the classifications seed, most sensitive first ('
                    ~ loaded | join(', ') ~ ") differs from var('governance_classifications') ("
                    ~ vocabulary | join(', ') ~ ')') -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(errors) }}
{%- endmacro %}

{% macro governance_raise_errors(errors, total_columns, total_nodes, info=true) -%}
    {%- if errors -%}
        {{ exceptions.raise_compiler_error(
            'Classification coverage failed (' ~ errors | length ~ ' problems):\n  - '
            ~ errors | join('\n  - ')) }}
    {%- endif -%}
    {{ log('Classification coverage: ' ~ total_columns ~ ' columns of ' ~ total_nodes
        ~ ' nodes classified', info=info) }}
{%- endmacro %}

{% macro assert_classification_coverage() -%}
    {%- if execute -%}
        {%- set vocabulary = governance_classification_vocabulary() -%}
        {%- set masks = governance_mask_vocabulary() -%}
        {%- set errors = governance_vocabulary_seed_errors(vocabulary) -%}
        {%- set rebuilt = selected_resources or [] -%}
        {%- set nodes = [] -%}
        {%- for node in graph.nodes.values()
            if node.resource_type in ('model', 'seed') and node.package_name == project_name
            and node.config.materialized != 'ephemeral' -%}
            {%- do nodes.append(node) -%}
        {%- endfor -%}
        {%- for node in graph.sources.values() if node.package_name == project_name -%}
            {%- do nodes.append(node) -%}
        {%- endfor -%}
        {%- set counts = {'columns': 0} -%}
        {%- for node in nodes | sort(attribute='unique_id') -%}
            {%- do errors.extend(governance_declaration_errors(node, vocabulary, masks)) -%}
            {%- do counts.update({'columns': counts['columns'] + node.columns | length}) -%}
            {%- if node.unique_id not in rebuilt -%}
                {%- set relation = governance_node_relation(node) -%}
                {%- if relation is not none -%}
                    {%- do errors.extend(governance_undeclared_column_errors(node, relation)) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do governance_raise_errors(errors, counts['columns'], nodes | length) -%}
    {%- endif -%}
{%- endmacro %}

{#-
    Post-hook form for one model (`this`), right after it is built: its fresh relation's
    columns must all be declared and classified. Catches a silver model without a contract
    that selects a column its YAML does not list, in the same run.
-#}
{% macro assert_model_columns_classified() -%}
    {%- if execute -%}
        {%- set node = graph.nodes.get(model.unique_id) -%}
        {%- set errors = governance_declaration_errors(
            node, governance_classification_vocabulary(), governance_mask_vocabulary()) -%}
        {%- set relation = adapter.get_relation(
            database=this.database, schema=this.schema, identifier=this.identifier) -%}
        {%- if relation is not none -%}
            {%- do errors.extend(governance_undeclared_column_errors(node, relation)) -%}
        {%- endif -%}
        {%- do governance_raise_errors(errors, node.columns | length, 1, info=false) -%}
    {%- endif -%}
{%- endmacro %}
