-- Every bronze DICOM instance is in stg_imaging__instances or explained by one of the model's
-- documented filters (DICOMDIR, missing SOP/Series UID or Patient ID, a repeated copy of an
-- instance that is in silver), and silver holds nothing that bronze does not. Returns the
-- unexplained rows; a passing test returns none.
with bronze as (
    select
        sop_class_uid,
        sop_instance_uid,
        series_instance_uid,
        patient_id,
        {{ pseudonymize('sop_instance_uid') }} as instance_key
    from {{ source('imaging', 'instances') }}
),

classified as (
    select
        instance_key,
        case
            when coalesce(sop_class_uid, '') = '1.2.840.10008.1.3.10' then 'dicomdir'
            when
                nullif(trim(sop_instance_uid), '') is null
                or nullif(trim(series_instance_uid), '') is null
                or nullif(trim(patient_id), '') is null
                then 'unkeyable'
        end as filter_reason
    from bronze
),

silver as (
    select instance_key
    from {{ ref('stg_imaging__instances') }}
),

missing_from_silver as (
    select
        'bronze instance missing from silver' as problem,
        classified.instance_key
    from classified
    left join silver
        on classified.instance_key = silver.instance_key
    where classified.filter_reason is null and silver.instance_key is null
),

not_in_bronze as (
    select
        'silver instance not in bronze' as problem,
        silver.instance_key
    from silver
    left join classified
        on
            silver.instance_key = classified.instance_key
            and classified.filter_reason is null
    where classified.instance_key is null
)

select
    problem,
    instance_key
from missing_from_silver
union all
select
    problem,
    instance_key
from not_in_bronze
