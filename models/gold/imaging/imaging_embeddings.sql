{{ config(file_format=lakehouse_file_format()) }}

-- One row per DICOM series with a computed embedding, for the vector index of similar-case
-- retrieval (DuckDB vss reads this table). Every series is here, including follow-up scans
-- after the landmark: retrieval looks at whole histories. Training code must keep only
-- within_feature_window rows so that no post-landmark image reaches a prognostic model.
with features as (
    select
        series_key,
        study_key,
        patient_key,
        modality,
        body_part_examined,
        days_from_index,
        embedding,
        embedding_dim,
        embedding_model,
        extractor_name,
        extractor_version
    from {{ ref('stg_imaging__features') }}
    where status = 'ok' and embedding is not null
),

index_dates as (
    select
        patient_key,
        {{ imaging_days_between('index_date', 'landmark_date') }} as landmark_days
    from {{ ref('int_ehr__index_dates') }}
)

select
    features.series_key,
    features.study_key,
    features.patient_key,
    features.modality,
    features.body_part_examined,
    features.days_from_index,
    features.embedding,
    features.embedding_dim,
    features.embedding_model,
    features.extractor_name,
    features.extractor_version,
    coalesce(features.days_from_index <= index_dates.landmark_days, false)
        as within_feature_window
from features
left join index_dates
    on features.patient_key = index_dates.patient_key
