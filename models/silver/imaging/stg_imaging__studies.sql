{{ config(file_format=lakehouse_file_format()) }}

-- De-identified imaging studies, one row per Study Instance UID (as its keyed hash), with
-- the shifted study date and days_from_index (real study date - real index date), so
-- features can be windowed against the landmark without any real date leaving bronze.
with series as (
    select
        study_key,
        patient_key,
        modality,
        body_part_examined,
        n_instances
    from {{ ref('stg_imaging__series') }}
),

instances as (
    select
        study_key,
        accession_key,
        shifted_study_date,
        days_from_index
    from {{ ref('stg_imaging__instances') }}
),

study_dates as (
    select
        study_key,
        min(accession_key) as accession_key,
        min(shifted_study_date) as shifted_study_date,
        min(days_from_index) as days_from_index
    from instances
    group by study_key
),

study_series as (
    select
        study_key,
        min(patient_key) as patient_key,
        -- A study mixing modalities (a PET/CT, say) lists the first alphabetically.
        min(modality) as modality,
        min(body_part_examined) as body_part_examined,
        count(*) as n_series,
        sum(n_instances) as n_instances
    from series
    group by study_key
)

select
    study_series.study_key,
    study_dates.accession_key,
    study_series.patient_key,
    study_series.modality,
    study_series.body_part_examined,
    study_dates.shifted_study_date,
    study_dates.days_from_index,
    cast(study_series.n_series as int) as n_series,
    cast(study_series.n_instances as int) as n_instances
from study_series
inner join study_dates
    on study_series.study_key = study_dates.study_key
