-- Accounting: every bronze ehr_* row is in its silver model or excluded by a documented
-- filter (models/silver/ehr/_ehr__models.yml): superseded version (its id is kept in a later
-- version), withdrawn status of the id's latest version, unlinked patient, missing id.
-- Typed resources of ehr_resources are accounted through their typed bronze table (same id
-- and record hash); resource types without a silver model are reported as unmodelled only
-- when they are of a type this project models. Returns every unaccounted bronze row.
{%- set typed = [
    ('patients', 'stg_ehr__patient_identifiers', 'fhir_patient_id', none, []),
    ('encounters', 'stg_ehr__encounters', 'encounter_id', 'status', ['entered-in-error']),
    ('conditions', 'stg_ehr__conditions', 'condition_id', 'verification_status',
        ['entered-in-error', 'refuted']),
    ('observations', 'stg_ehr__observations', 'observation_id', 'status',
        ['entered-in-error', 'cancelled']),
    ('medication_requests', 'stg_ehr__medications', 'medication_request_id', 'status',
        ['entered-in-error', 'draft']),
    ('procedures', 'stg_ehr__procedures', 'procedure_id', 'status',
        ['entered-in-error', 'not-done']),
] %}
{%- set typed_resources = {
    'Patient': 'patients', 'Encounter': 'encounters', 'Condition': 'conditions',
    'Observation': 'observations', 'MedicationRequest': 'medication_requests',
    'Procedure': 'procedures',
} %}
with identifiers as (
    select fhir_patient_id
    from {{ ref('stg_ehr__patient_identifiers') }}
),

{% for table, model, id_column, status_column, withdrawn in typed %}
    {%- set withdrawn_sql = "'" ~ withdrawn | join("', '") ~ "'" %}
    bronze_{{ table }} as (
        select
            id,
            {% if table == 'patients' -%}
                id as patient_id,
                nullif(trim(mrn), '') is null as no_mrn,
            {%- else -%}
                {{ ehr_reference_id('patient_ref') }} as patient_id,
                false as no_mrn,
            {%- endif %}
            {% if status_column -%}
                {{ status_column }} as record_status,
            {%- else -%}
                cast(null as string) as record_status,
            {%- endif %}
            row_number() over (
                partition by id
                order by last_updated desc, _ingested_at desc, _record_hash asc
            ) as version_rank
        from {{ source('ehr', table) }}
    ),

    unaccounted_{{ table }} as (
        select
            '{{ table }}' as bronze_table,
            bronze.id
        from bronze_{{ table }} as bronze
        left join {{ ref(model) }} as silver
            on bronze.id = silver.{{ id_column }}
        left join bronze_{{ table }} as latest
            on bronze.id = latest.id and latest.version_rank = 1
        left join identifiers
            on bronze.patient_id = identifiers.fhir_patient_id
        where
            silver.{{ id_column }} is null
            and bronze.id is not null
            and not bronze.no_mrn
            and identifiers.fhir_patient_id is not null
            {% if withdrawn -%}
                and coalesce(latest.record_status, '') not in ({{ withdrawn_sql }})
            {%- endif %}
    ),

{% endfor %}
resources as (
    select
        resource_type,
        id,
        patient_ref,
        raw_json,
        _record_hash,
        row_number() over (
            partition by resource_type, id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from {{ source('ehr', 'resources') }}
),

-- The reader lands each typed resource twice, raw and flattened, with one record hash.
unaccounted_resources_typed as (
    {% for resource_type, table in typed_resources.items() %}
        {%- if not loop.first %}
            union all
        {% endif -%}
        select
            'resources' as bronze_table,
            resources.id
        from resources
        left join {{ source('ehr', table) }} as typed_rows
            on
                resources.id = typed_rows.id
                and resources._record_hash = typed_rows._record_hash
        where resources.resource_type = '{{ resource_type }}' and typed_rows.id is null
    {% endfor %}
),

unaccounted_imaging_studies as (
    select
        'resources' as bronze_table,
        resources.id
    from resources
    left join {{ ref('stg_ehr__imaging_studies') }} as silver
        on resources.id = silver.imaging_study_id
    left join resources as latest
        on
            resources.id = latest.id
            and latest.resource_type = 'ImagingStudy'
            and latest.version_rank = 1
    left join identifiers
        on {{ ehr_reference_id('resources.patient_ref') }} = identifiers.fhir_patient_id
    where
        resources.resource_type = 'ImagingStudy'
        and silver.imaging_study_id is null
        and resources.id is not null
        and identifiers.fhir_patient_id is not null
        and coalesce({{ ehr_json_string('latest.raw_json', '$.status') }}, '')
        not in ('entered-in-error', 'cancelled')
)

{% for table, model, id_column, status_column, withdrawn in typed %}
    select
        bronze_table,
        id
    from unaccounted_{{ table }}
    union all
{% endfor %}
select
    bronze_table,
    id
from unaccounted_resources_typed
union all
select
    bronze_table,
    id
from unaccounted_imaging_studies
