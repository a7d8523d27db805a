{{ config(file_format=lakehouse_file_format()) }}

-- Procedures (biopsy, resection, radiotherapy, imaging) keyed by patient_key. Imaging
-- procedures carry the pseudonym of the RIS accession number, the link to the DICOM study
-- and its report.
-- Filters: superseded versions of a resource id (latest meta.lastUpdated kept), status
-- entered-in-error or not-done (nothing was performed), rows whose Patient is not in the
-- export.
with source as (
    select
        id,
        patient_ref,
        encounter_ref,
        status,
        code_system,
        code,
        code_display,
        code_text,
        performed_at,
        performed_end,
        body_site,
        reason_code,
        reason_ref,
        identifiers,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'procedures') }}
),

versions as (
    select
        id,
        patient_ref,
        encounter_ref,
        status,
        code_system,
        code,
        code_display,
        code_text,
        performed_at,
        performed_end,
        body_site,
        reason_code,
        reason_ref,
        identifiers,
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
    versions.id as procedure_id,
    {{ ehr_reference_id('versions.encounter_ref') }} as encounter_id,
    -- null when the resource names no visit; false when the named visit is missing.
    case
        when versions.encounter_ref is not null then encounters.encounter_id is not null
    end as encounter_ref_resolved,
    versions.status,
    versions.code_system,
    versions.code,
    coalesce(versions.code_display, versions.code_text) as code_display,
    versions.code_text,
    versions.body_site,
    versions.reason_code,
    {{ ehr_reference_id('versions.reason_ref') }} as reason_condition_id,
    -- The accession number identifies a person's exam: only its pseudonym (the imaging and
    -- notes models key studies the same way) leaves bronze.
    {{ pseudonymize(ehr_accession_number('versions.identifiers')) }} as accession_key,
    cast(versions.performed_at as timestamp) as performed_at,
    cast(versions.performed_end as timestamp) as performed_end,
    cast(versions.performed_at as date) as performed_date,
    cast(versions.last_updated as timestamp) as last_updated
from versions
inner join identifiers
    on {{ ehr_reference_id('versions.patient_ref') }} = identifiers.fhir_patient_id
left join encounters
    on {{ ehr_reference_id('versions.encounter_ref') }} = encounters.encounter_id
where
    versions.version_rank = 1
    and coalesce(versions.status, '') not in ('entered-in-error', 'not-done')
