{{ config(file_format=lakehouse_file_format()) }}

-- Diagnoses and problem-list items keyed by patient_key, with the mCODE stage summary that
-- the primary cancer Condition carries. Filters: superseded versions of a resource id (the
-- latest meta.lastUpdated is kept), verificationStatus entered-in-error or refuted (the
-- diagnosis was withdrawn), and rows whose Patient is not in the export.
with source as (
    select
        id,
        patient_ref,
        encounter_ref,
        clinical_status,
        verification_status,
        category,
        code_system,
        code,
        code_display,
        code_text,
        icd10cm_code,
        icd10cm_display,
        snomed_code,
        snomed_display,
        onset_at,
        onset_date,
        abatement_at,
        recorded_at,
        stage_summary_text,
        stage_summary_system,
        stage_summary_code,
        stage_type_code,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'conditions') }}
),

versions as (
    select
        id,
        patient_ref,
        encounter_ref,
        clinical_status,
        verification_status,
        category,
        code_system,
        code,
        code_display,
        code_text,
        icd10cm_code,
        icd10cm_display,
        snomed_code,
        snomed_display,
        onset_at,
        onset_date,
        abatement_at,
        recorded_at,
        stage_summary_text,
        stage_summary_system,
        stage_summary_code,
        stage_type_code,
        last_updated,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from source
    where id is not null
),

identifiers as (
    select
        fhir_patient_id,
        patient_key
    from {{ ref('stg_ehr__patient_identifiers') }}
),

encounters as (
    select encounter_id
    from {{ ref('stg_ehr__encounters') }}
)

select
    identifiers.patient_key,
    versions.id as condition_id,
    {{ ehr_reference_id('versions.encounter_ref') }} as encounter_id,
    -- A reference to a visit that is not in the export (or was entered in error) is kept:
    -- the diagnosis stands on its own, the flag tells joins not to expect a visit.
    case
        when versions.encounter_ref is not null then encounters.encounter_id is not null
    end as encounter_ref_resolved,
    versions.clinical_status,
    versions.verification_status,
    versions.category,
    versions.code_system,
    versions.code,
    coalesce(versions.code_display, versions.code_text) as code_display,
    upper(trim(versions.icd10cm_code)) as icd10cm_code,
    versions.icd10cm_display,
    trim(versions.snomed_code) as snomed_code,
    versions.snomed_display,
    -- onsetDateTime often has day precision; the calendar date as written is the truth.
    coalesce(versions.onset_date, cast(versions.onset_at as date)) as onset_date,
    cast(versions.onset_at as timestamp) as onset_at,
    cast(versions.abatement_at as timestamp) as abatement_at,
    cast(versions.recorded_at as timestamp) as recorded_at,
    versions.stage_summary_text,
    versions.stage_summary_system,
    versions.stage_summary_code,
    versions.stage_type_code,
    cast(versions.last_updated as timestamp) as last_updated
from versions
inner join identifiers
    on {{ ehr_reference_id('versions.patient_ref') }} = identifiers.fhir_patient_id
left join encounters
    on {{ ehr_reference_id('versions.encounter_ref') }} = encounters.encounter_id
where
    versions.version_rank = 1
    and coalesce(versions.verification_status, '') not in ('entered-in-error', 'refuted')
