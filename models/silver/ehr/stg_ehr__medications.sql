{{ config(file_format=lakehouse_file_format()) }}

-- Medication orders (MedicationRequest) keyed by patient_key: the RxNorm drug, when it was
-- ordered (authoredOn), its status, why it was stopped and what it treats. Systemic therapy
-- start is the authored date of the order.
-- Filters: superseded versions of a resource id (latest meta.lastUpdated kept), status
-- entered-in-error (the order never existed) or draft (never signed), rows whose Patient is
-- not in the export. Cancelled orders stay (status tells), as they document a decision.
with source as (
    select
        id,
        patient_ref,
        encounter_ref,
        status,
        intent,
        rxnorm_code,
        rxnorm_display,
        medication_text,
        medication_ref,
        authored_on,
        dosage_text,
        status_reason,
        reason_code,
        reason_text,
        reason_ref,
        prior_prescription_ref,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'medication_requests') }}
),

versions as (
    select
        id,
        patient_ref,
        encounter_ref,
        status,
        intent,
        rxnorm_code,
        rxnorm_display,
        medication_text,
        medication_ref,
        authored_on,
        dosage_text,
        status_reason,
        reason_code,
        reason_text,
        reason_ref,
        prior_prescription_ref,
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
    versions.id as medication_request_id,
    {{ ehr_reference_id('versions.encounter_ref') }} as encounter_id,
    -- null when the resource names no visit; false when the named visit is missing.
    case
        when versions.encounter_ref is not null then encounters.encounter_id is not null
    end as encounter_ref_resolved,
    versions.status,
    versions.intent,
    trim(versions.rxnorm_code) as rxnorm_code,
    coalesce(versions.rxnorm_display, versions.medication_text) as medication_display,
    versions.dosage_text,
    versions.status_reason,
    versions.reason_code,
    versions.reason_text,
    {{ ehr_reference_id('versions.reason_ref') }} as reason_condition_id,
    {{ ehr_reference_id('versions.prior_prescription_ref') }} as prior_medication_request_id,
    cast(versions.authored_on as timestamp) as authored_at,
    cast(versions.authored_on as date) as authored_date,
    cast(versions.last_updated as timestamp) as last_updated
from versions
inner join identifiers
    on {{ ehr_reference_id('versions.patient_ref') }} = identifiers.fhir_patient_id
left join encounters
    on {{ ehr_reference_id('versions.encounter_ref') }} = encounters.encounter_id
where
    versions.version_rank = 1
    and coalesce(versions.status, '') not in ('entered-in-error', 'draft')
