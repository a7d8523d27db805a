{#-
    Engine helpers of the imaging models (adapter.dispatch: default__ serves Spark and
    Databricks, duckdb__ the local target).

    imaging_json_string(json_expr, path): the value at a JSONPath as a string, null when
    absent. The path uses dot keys and [n] indexes only ('$.embedding', '$.00081090.Value[0]'),
    the subset both engines read the same way; keys may start with a digit (DICOM tags).
-#}
{% macro imaging_json_string(json_expr, path) -%}
    {{ return(adapter.dispatch('imaging_json_string', 'multimodal_lakehouse')(json_expr, path)) }}
{%- endmacro %}

{% macro default__imaging_json_string(json_expr, path) -%}
    get_json_object({{ json_expr }}, '{{ path }}')
{%- endmacro %}

{% macro duckdb__imaging_json_string(json_expr, path) -%}
    json_extract_string({{ json_expr }}, '{{ path }}')
{%- endmacro %}

{#-
    dicom_header_string(header_expr, tag): the first value of a DICOM attribute in a header
    stored as DICOM JSON (PS3.18 F.2: {"GGGGEEEE": {"vr": .., "Value": [..]}}), as a string.
    Only for attributes the de-identification profile keeps (seeds/imaging/deid_profile.csv):
    the header itself never leaves bronze.
-#}
{% macro dicom_header_string(header_expr, tag) -%}
    {{ imaging_json_string(header_expr, '$.' ~ tag | upper ~ '.Value[0]') }}
{%- endmacro %}

{#-
    imaging_array_element(array_expr, position): element `position` (1-based) of an array,
    null past its end. DuckDB lists index from 1 with [], Spark arrays from 0; element_at
    is 1-based on Spark but maps-only on DuckDB.
-#}
{% macro imaging_array_element(array_expr, position) -%}
    {{ return(
        adapter.dispatch('imaging_array_element', 'multimodal_lakehouse')(array_expr, position)
    ) }}
{%- endmacro %}

{#- try_: under ANSI mode (Spark 4 default) element_at raises past the end. -#}
{% macro default__imaging_array_element(array_expr, position) -%}
    try_element_at({{ array_expr }}, {{ position }})
{%- endmacro %}

{% macro duckdb__imaging_array_element(array_expr, position) -%}
    list_extract({{ array_expr }}, {{ position }})
{%- endmacro %}

{#- imaging_array_length(array_expr): number of elements as int (null for a null array). -#}
{% macro imaging_array_length(array_expr) -%}
    {{ return(adapter.dispatch('imaging_array_length', 'multimodal_lakehouse')(array_expr)) }}
{%- endmacro %}

{#- Spark's size() answers -1 for a null array (legacy sizeOfNull); make it null. -#}
{% macro default__imaging_array_length(array_expr) -%}
    case when {{ array_expr }} is not null then size({{ array_expr }}) end
{%- endmacro %}

{% macro duckdb__imaging_array_length(array_expr) -%}
    cast(len({{ array_expr }}) as int)
{%- endmacro %}

{#-
    imaging_add_days(date_expr, days_expr) and imaging_days_between(start_expr, end_expr):
    date arithmetic that passes nulls through. dbt.dateadd / dbt.datediff wrap their
    arguments in assert_not_null on Spark, which fails the whole query on a null date, and
    imaging dates are often null by design (a scan of a patient without an index date).
-#}
{% macro imaging_add_days(date_expr, days_expr) -%}
    {{ return(adapter.dispatch('imaging_add_days', 'multimodal_lakehouse')(date_expr, days_expr)) }}
{%- endmacro %}

{% macro default__imaging_add_days(date_expr, days_expr) -%}
    date_add({{ date_expr }}, {{ days_expr }})
{%- endmacro %}

{#- DuckDB: date + integer is a date (whereas date + interval would be a timestamp). -#}
{% macro duckdb__imaging_add_days(date_expr, days_expr) -%}
    cast({{ date_expr }} + cast({{ days_expr }} as integer) as date)
{%- endmacro %}

{#- Whole days from start to end (end - start), as int. -#}
{% macro imaging_days_between(start_expr, end_expr) -%}
    {{ return(
        adapter.dispatch('imaging_days_between', 'multimodal_lakehouse')(start_expr, end_expr)
    ) }}
{%- endmacro %}

{% macro default__imaging_days_between(start_expr, end_expr) -%}
    datediff({{ end_expr }}, {{ start_expr }})
{%- endmacro %}

{% macro duckdb__imaging_days_between(start_expr, end_expr) -%}
    cast(date_diff('day', {{ start_expr }}, {{ end_expr }}) as int)
{%- endmacro %}
