{#-
    ehr_accession_number(identifiers): the accession number among a Procedure's identifiers
    (bronze: array of struct(system, value, type_code)). HL7 v2-0203 type ACSN marks it; some
    senders only give the RIS accession namespace as system. The first match wins.
    Higher-order functions differ: DuckDB list_filter/list_extract (1-based) vs Spark
    filter/element_at (1-based).
-#}
{% macro ehr_accession_number(identifiers) -%}
    {{ return(adapter.dispatch('ehr_accession_number', 'multimodal_lakehouse')(identifiers)) }}
{%- endmacro %}

{% macro default__ehr_accession_number(identifiers) -%}
    element_at(
        filter(
            {{ identifiers }},
            x -> x.type_code = 'ACSN' or lower(x.system) like '%accession%'
        ),
        1
    ).value
{%- endmacro %}

{% macro duckdb__ehr_accession_number(identifiers) -%}
    struct_extract(
        list_extract(
            list_filter(
                {{ identifiers }},
                lambda x: x.type_code = 'ACSN' or lower(x.system) like '%accession%'
            ),
            1
        ),
        'value'
    )
{%- endmacro %}
