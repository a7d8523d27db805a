{{ config(file_format=lakehouse_file_format()) }}

-- The ONE restricted table of direct identifiers: it maps each FHIR Patient id to the study
-- pseudonym (patient_key) and keeps the MRN, names, birth date, address and phone for
-- re-identification by authorised staff only. Every other silver model links to patients
-- through this table and carries patient_key alone.
with source as (
    select
        id,
        mrn,
        mrn_system,
        family,
        given,
        birth_date,
        phone,
        address_line,
        city,
        state,
        postal_code,
        country,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'patients') }}
),

-- A bulk export can hold several versions of one Patient (re-sent files, later updates):
-- the latest meta.lastUpdated is the current record.
versions as (
    select
        id,
        mrn,
        mrn_system,
        family,
        given,
        birth_date,
        phone,
        address_line,
        city,
        state,
        postal_code,
        country,
        last_updated,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from source
    where id is not null and nullif(trim(mrn), '') is not null
)

select
    {{ pseudonymize('mrn') }} as patient_key,
    id as fhir_patient_id,
    upper(trim(mrn)) as mrn,
    mrn_system,
    family as family_name,
    given as given_names,
    birth_date,
    address_line,
    city,
    state,
    postal_code,
    country,
    phone,
    cast(last_updated as timestamp) as last_updated
from versions
where version_rank = 1
