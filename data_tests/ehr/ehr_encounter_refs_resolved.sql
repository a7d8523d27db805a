-- encounter_ref_resolved tells the truth in every EHR silver model: true exactly when the
-- referenced Encounter is in stg_ehr__encounters, false when the reference dangles, null
-- only when no Encounter is referenced. Returns the rows that break it.
{%- set models = [
    ('stg_ehr__conditions', 'condition_id'),
    ('stg_ehr__observations', 'observation_id'),
    ('stg_ehr__medications', 'medication_request_id'),
    ('stg_ehr__procedures', 'procedure_id'),
    ('stg_ehr__imaging_studies', 'imaging_study_id'),
] %}
with encounters as (
    select encounter_id
    from {{ ref('stg_ehr__encounters') }}
)

{% for model, id_column in models %}
    {%- if not loop.first %}
        union all
    {% endif -%}
    select
        '{{ model }}' as model_name,
        resource_rows.{{ id_column }} as resource_id,
        resource_rows.encounter_id,
        resource_rows.encounter_ref_resolved
    from {{ ref(model) }} as resource_rows
    left join encounters
        on resource_rows.encounter_id = encounters.encounter_id
    where
        (resource_rows.encounter_id is null and resource_rows.encounter_ref_resolved is not null)
        or (
            resource_rows.encounter_id is not null
            and (
                resource_rows.encounter_ref_resolved is null
                or resource_rows.encounter_ref_resolved != (encounters.encounter_id is not null)
            )
        )
{% endfor %}
