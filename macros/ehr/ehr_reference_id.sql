{#-
    ehr_reference_id(expr): the logical id a FHIR reference points to.

    The reader already resolves Patient references to bare ids, but other references arrive as
    written by the source system: `Encounter/<id>`, an absolute URL
    `https://host/fhir/Encounter/<id>`, a versioned `Encounter/<id>/_history/<n>` or a
    Bundle-local `urn:uuid:<id>`. All of them name the resource by its last id segment, so the
    history suffix and everything up to the type name are dropped. Plain ids pass through.
-#}
{% macro ehr_reference_id(expr) -%}
    nullif(
        regexp_replace(
            regexp_replace(trim({{ expr }}), '/_history/[^/]*$', ''),
            '^(urn:uuid:|urn:oid:|.*/)',
            ''
        ),
        ''
    )
{%- endmacro %}
