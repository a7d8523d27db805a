-- Every bronze radiomics row (one per DICOM series) is in stg_imaging__features unless it has
-- no Patient ID (the model's documented filter), and every silver series of
-- stg_imaging__series has its radiomics row: the ingest computes one per series, whatever
-- its pixels did. Returns the unexplained series; a passing test returns none.
with bronze as (
    select {{ pseudonymize('series_instance_uid') }} as series_key
    from {{ source('imaging', 'features') }}
    where nullif(trim(patient_id), '') is not null
),

features as (
    select series_key
    from {{ ref('stg_imaging__features') }}
),

series as (
    select series_key
    from {{ ref('stg_imaging__series') }}
),

missing_features as (
    select
        'bronze features row missing from silver' as problem,
        bronze.series_key
    from bronze
    left join features
        on bronze.series_key = features.series_key
    where features.series_key is null
),

series_without_features as (
    select
        'silver series without a features row' as problem,
        series.series_key
    from series
    left join features
        on series.series_key = features.series_key
    where features.series_key is null
)

select
    problem,
    series_key
from missing_features
union all
select
    problem,
    series_key
from series_without_features
