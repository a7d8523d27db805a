{{ config(file_format=lakehouse_file_format()) }}

-- Study enrolments (FHIR ResearchSubject, read from the raw JSON in ehr_resources), keyed by
-- patient_key, with the study's business identifier (ResearchStudy.identifier, e.g.
-- MMLAKE-ONC-001) joined from the ResearchStudy resources: the source of the governance
-- `study` row filter. R4 names the patient `individual` (R5: `subject`), which the reader does
-- not resolve into patient_ref, so the reference is read from the JSON. Filters: superseded
-- versions of a resource id, status of a patient who is not (or no longer) enrolled
-- (candidate, eligible, ineligible, not-registered, pending-on-study, potential-candidate,
-- screening, withdrawn), rows whose Patient is not in the export, missing id.
{%- set max_identifiers = 3 %}
with resources as (
    select
        resource_type,
        id,
        raw_json,
        last_updated,
        row_number() over (
            partition by resource_type, id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from {{ source('ehr', 'resources') }}
    where resource_type in ('ResearchSubject', 'ResearchStudy') and id is not null
),

subjects as (
    select
        id,
        last_updated,
        {{ ehr_json_string('raw_json', '$.status') }} as status,
        {{ ehr_reference_id(ehr_json_string('raw_json', '$.individual.reference')) }}
            as patient_id,
        {{ ehr_reference_id(ehr_json_string('raw_json', '$.study.reference')) }}
            as research_study_id,
        {{ ehr_reference_id(ehr_json_string('raw_json', '$.consent.reference')) }}
            as consent_id,
        {{ ehr_json_string('raw_json', '$.period.start') }} as period_start_text,
        {{ ehr_json_string('raw_json', '$.period.end') }} as period_end_text
    from resources
    where resource_type = 'ResearchSubject' and version_rank = 1
),

-- ResearchStudy.identifier is a list: the official identifier wins, else the first one.
study_identifiers as (
    select
        id,
        {{ ehr_json_string('raw_json', '$.title') }} as study_title,
        {%- for i in range(max_identifiers) %}
            {{ ehr_json_string('raw_json', '$.identifier[' ~ i ~ '].use') }} as id_use_{{ i }},
            {{ ehr_json_string('raw_json', '$.identifier[' ~ i ~ '].value') }}
                as id_value_{{ i }},
        {%- endfor %}
        {{ ehr_json_string('raw_json', '$.status') }} as study_status
    from resources
    where resource_type = 'ResearchStudy' and version_rank = 1
),

studies as (
    select
        id,
        study_title,
        study_status,
        coalesce(
            {%- for i in range(max_identifiers) %}
                case when id_use_{{ i }} = 'official' then id_value_{{ i }} end,
            {%- endfor %}
            id_value_0
        ) as study_id
    from study_identifiers
),

identifiers as (
    select
        fhir_patient_id,
        patient_key
    from {{ ref('stg_ehr__patient_identifiers') }}
)

select
    identifiers.patient_key,
    subjects.id as research_subject_id,
    -- Null when the referenced ResearchStudy is not in the export (a warn-level test says so).
    studies.study_id,
    subjects.research_study_id,
    studies.study_title,
    studies.study_status,
    subjects.status,
    subjects.consent_id,
    cast({{ ehr_parse_instant('subjects.period_start_text') }} as date) as on_study_from,
    cast({{ ehr_parse_instant('subjects.period_end_text') }} as date) as on_study_until,
    cast(subjects.last_updated as timestamp) as last_updated
from subjects
inner join identifiers
    on subjects.patient_id = identifiers.fhir_patient_id
left join studies
    on subjects.research_study_id = studies.id
where
    coalesce(subjects.status, '') not in (
        'candidate', 'eligible', 'ineligible', 'not-registered', 'pending-on-study',
        'potential-candidate', 'screening', 'withdrawn'
    )
