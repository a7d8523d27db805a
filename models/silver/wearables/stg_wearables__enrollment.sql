{{ config(file_format=lakehouse_file_format()) }}

-- The device register with identifiers replaced by pseudonyms: which patient wore which
-- device over which period. A register line that repeats (the same device and start date in
-- two register files) keeps its latest landing, the coordinator's current word.
with register as (
    select
        device_id,
        device_model,
        patient_mrn,
        enrolled_on,
        withdrawn_on,
        _ingested_at,
        _source_file,
        _source_locator
    from {{ source('wearables', 'enrollment') }}
    where
        device_id is not null
        and trim(device_id) != ''
        and patient_mrn is not null
        and trim(patient_mrn) != ''
        and enrolled_on is not null
),

latest as (
    select
        device_id,
        device_model,
        patient_mrn,
        enrolled_on,
        withdrawn_on,
        row_number() over (
            partition by upper(trim(device_id)), enrolled_on
            order by _ingested_at desc, _source_file desc, _source_locator desc
        ) as landing_rank
    from register
)

select
    {{ pseudonymize('device_id') }} as device_key,
    {{ pseudonymize('patient_mrn') }} as patient_key,
    device_model,
    enrolled_on,
    withdrawn_on
from latest
where landing_rank = 1
