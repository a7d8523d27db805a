{#-
    Array and string helpers of the genomics models. Glow's VCF schema is array-heavy (ALT
    alleles, INFO Number=A/R fields, genotypes, calls, allele depths), and the engines spell
    array functions differently: Spark and Databricks (default__) have explode, size,
    try_element_at and `x -> ...` lambdas; DuckDB (duckdb__) has unnest, len, 1-based list
    indexing and `lambda x: ...`. Every helper indexes arrays from 1 on both engines, so the
    models are written once with VCF's own numbering (ALT allele 1 is the first ALT).
-#}

{#- genomics_array_size(arr): number of elements; null for a null array. -#}
{% macro genomics_array_size(arr) -%}
    {{ return(adapter.dispatch('genomics_array_size', 'multimodal_lakehouse')(arr)) }}
{%- endmacro %}

{% macro default__genomics_array_size(arr) -%}
    size({{ arr }})
{%- endmacro %}

{% macro duckdb__genomics_array_size(arr) -%}
    len({{ arr }})
{%- endmacro %}

{#-
    genomics_element_at(arr, index): element `index` (1-based) of an array, null when the
    array is null or shorter. Spark's element_at raises out of bounds under ANSI mode (the
    Spark 4 default), hence try_element_at; a Number=A INFO array missing its value ('.') is
    common in real VCFs and must not fail the model.
-#}
{% macro genomics_element_at(arr, index) -%}
    {{ return(adapter.dispatch('genomics_element_at', 'multimodal_lakehouse')(arr, index)) }}
{%- endmacro %}

{% macro default__genomics_element_at(arr, index) -%}
    try_element_at({{ arr }}, {{ index }})
{%- endmacro %}

{% macro duckdb__genomics_element_at(arr, index) -%}
    list_extract({{ arr }}, {{ index }})
{%- endmacro %}

{#-
    genomics_explode_index(arr): a generator (in a select list, aliased by the caller) of the
    1-based indices 1..size(arr), one output row per index. An empty or null array still
    yields index 1, so a site without ALT allele (or a sites-only VCF without genotypes) keeps
    one row and no bronze record disappears silently; the element at that index is null.
-#}
{% macro genomics_explode_index(arr) -%}
    {{ return(adapter.dispatch('genomics_explode_index', 'multimodal_lakehouse')(arr)) }}
{%- endmacro %}

{% macro default__genomics_explode_index(arr) -%}
    explode(sequence(1, greatest(coalesce(size({{ arr }}), 0), 1)))
{%- endmacro %}

{% macro duckdb__genomics_explode_index(arr) -%}
    unnest(generate_series(1, greatest(coalesce(len({{ arr }}), 0), 1)))
{%- endmacro %}

{#- genomics_array_join(arr, sep): the elements joined by sep (nulls skipped). -#}
{% macro genomics_array_join(arr, sep) -%}
    {{ return(adapter.dispatch('genomics_array_join', 'multimodal_lakehouse')(arr, sep)) }}
{%- endmacro %}

{% macro default__genomics_array_join(arr, sep) -%}
    array_join({{ arr }}, {{ sep }})
{%- endmacro %}

{% macro duckdb__genomics_array_join(arr, sep) -%}
    array_to_string({{ arr }}, {{ sep }})
{%- endmacro %}

{#-
    genomics_count_where(arr, var, predicate): how many elements satisfy predicate, written
    in terms of the lambda variable var, e.g. genomics_count_where('calls', 'c', 'c >= 0').
-#}
{% macro genomics_count_where(arr, var, predicate) -%}
    {{ return(adapter.dispatch('genomics_count_where', 'multimodal_lakehouse')(
        arr, var, predicate)) }}
{%- endmacro %}

{% macro default__genomics_count_where(arr, var, predicate) -%}
    size(filter({{ arr }}, {{ var }} -> {{ predicate }}))
{%- endmacro %}

{% macro duckdb__genomics_count_where(arr, var, predicate) -%}
    len(list_filter({{ arr }}, lambda {{ var }}: {{ predicate }}))
{%- endmacro %}

{#- genomics_array_sum(arr): sum of an integer array, missing elements counted as 0. -#}
{% macro genomics_array_sum(arr) -%}
    {{ return(adapter.dispatch('genomics_array_sum', 'multimodal_lakehouse')(arr)) }}
{%- endmacro %}

{% macro default__genomics_array_sum(arr) -%}
    aggregate({{ arr }}, cast(0 as bigint), (acc, x) -> acc + coalesce(x, 0))
{%- endmacro %}

{% macro duckdb__genomics_array_sum(arr) -%}
    coalesce(list_sum({{ arr }}), case when {{ arr }} is not null then 0 end)
{%- endmacro %}

{#-
    genomics_common_prefix_length(a, b, max_len): length of the common leading substring of
    strings a and b, capped at max_len (an integer expression; 0 or less gives 0). Used for
    allele trimming: with max_len = min(len(a), len(b)) - 1 the trim always keeps one base.
    Applied to reverse(a), reverse(b) it gives the common trailing length.
-#}
{% macro genomics_common_prefix_length(a, b, max_len) -%}
    {{ return(adapter.dispatch('genomics_common_prefix_length', 'multimodal_lakehouse')(
        a, b, max_len)) }}
{%- endmacro %}

{#- Spark's sequence(1, 0) counts down ([1, 0]); the case keeps max_len < 1 away from it. -#}
{% macro default__genomics_common_prefix_length(a, b, max_len) -%}
    case
        when {{ max_len }} < 1 then 0
        else coalesce(
            nullif(
                array_position(
                    transform(
                        sequence(1, {{ max_len }}),
                        i -> substr({{ a }}, i, 1) != substr({{ b }}, i, 1)
                    ),
                    true
                ),
                0
            ) - 1,
            {{ max_len }}
        )
    end
{%- endmacro %}

{% macro duckdb__genomics_common_prefix_length(a, b, max_len) -%}
    case
        when {{ max_len }} < 1 then 0
        else coalesce(
            list_position(
                list_transform(
                    range(1, {{ max_len }} + 1),
                    lambda i: substr({{ a }}, i, 1) != substr({{ b }}, i, 1)
                ),
                true
            ) - 1,
            {{ max_len }}
        )
    end
{%- endmacro %}
