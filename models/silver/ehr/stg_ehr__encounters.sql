{{ config(file_format=lakehouse_file_format()) }}

-- Visits (ambulatory, inpatient, infusion ...) with their period, keyed by patient_key.
-- Filters: superseded versions of a resource id (the latest meta.lastUpdated is kept),
-- status entered-in-error (the visit never happened), and rows whose Patient is not in the
-- export (cannot be keyed; the reader already quarantines those, so normally none).
with source as (
    select
        id,
        patient_ref,
        status,
        class_code,
        class_display,
        type_system,
        type_code,
        type_display,
        type_text,
        reason_code,
        reason_display,
        period_start,
        period_end,
        service_provider,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'encounters') }}
),

versions as (
    select
        id,
        patient_ref,
        status,
        class_code,
        class_display,
        type_system,
        type_code,
        type_display,
        type_text,
        reason_code,
        reason_display,
        period_start,
        period_end,
        service_provider,
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
)

select
    identifiers.patient_key,
    versions.id as encounter_id,
    versions.status,
    versions.class_code,
    versions.class_display,
    versions.type_system,
    versions.type_code,
    versions.reason_code,
    versions.reason_display,
    cast(versions.period_start as timestamp) as period_start,
    cast(versions.period_end as timestamp) as period_end,
    cast(versions.period_start as date) as encounter_date,
    versions.service_provider,
    cast(versions.last_updated as timestamp) as last_updated,
    coalesce(versions.type_display, versions.type_text) as type_display
from versions
inner join identifiers
    on {{ ehr_reference_id('versions.patient_ref') }} = identifiers.fhir_patient_id
where
    versions.version_rank = 1
    and coalesce(versions.status, '') != 'entered-in-error'
