{{ config(file_format=lakehouse_file_format()) }}

-- Demographics of each patient, keyed by the pseudonym only: no FHIR id, MRN, name or full
-- birth date (birth year is enough for age at diagnosis and is not a direct identifier).
with source as (
    select
        id,
        mrn,
        gender,
        birth_year,
        birth_date,
        deceased,
        deceased_at,
        race,
        ethnicity,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'patients') }}
    where id is not null and nullif(trim(mrn), '') is not null
),

-- One row per patient_key: when an MRN occurs in several Patient resources (duplicate
-- versions, or two ids for one MRN), the most recently updated record wins.
keyed as (
    select
        {{ pseudonymize('mrn') }} as patient_key,
        gender,
        birth_year,
        birth_date,
        deceased,
        deceased_at,
        race,
        ethnicity,
        last_updated,
        _ingested_at,
        _record_hash
    from source
),

ranked as (
    select
        patient_key,
        gender,
        birth_year,
        birth_date,
        deceased,
        deceased_at,
        race,
        ethnicity,
        last_updated,
        row_number() over (
            partition by patient_key
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from keyed
)

select
    patient_key,
    cast(coalesce(birth_year, year(birth_date)) as int) as birth_year,
    cast(deceased_at as date) as deceased_date,
    race as race_code,
    ethnicity as ethnicity_code,
    cast(last_updated as timestamp) as last_updated,
    case
        when lower(trim(gender)) in ('male', 'female', 'other', 'unknown')
            then lower(trim(gender))
    end as sex,
    coalesce(deceased, deceased_at is not null) as deceased
from ranked
where version_rank = 1
