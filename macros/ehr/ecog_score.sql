{#
    ECOG performance status 0-5 from a FHIR Observation (LOINC 89247-1) as silver carries it:
    valueInteger, a quantity, or a code of the LOINC answer list LL529-9 (LA9622-7 .. LA9627-6).
    `obs` qualifies the columns when the observations relation is aliased.
#}
{% macro ecog_score(obs=none) -%}
    {%- set p = (obs ~ '.') if obs else '' -%}
    coalesce(
        {{ p }}value_integer,
        {{ p }}value_quantity,
        case {{ p }}value_code
            when 'LA9622-7' then 0
            when 'LA9623-5' then 1
            when 'LA9624-3' then 2
            when 'LA9625-0' then 3
            when 'LA9626-8' then 4
            when 'LA9627-6' then 5
        end
    )
{%- endmacro %}
