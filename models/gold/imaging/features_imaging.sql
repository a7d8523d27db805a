{{ config(file_format=lakehouse_file_format()) }}

-- Imaging features per patient for the fusion models: the radiomics of the baseline study,
-- i.e. the latest study dated on or before the landmark (index date + feature_landmark_days),
-- so nothing imaged after the landmark can leak into a model predicting progression.
-- Patients whose every study is after the landmark, or who have no index date, get no row
-- (their imaging is not observable at prediction time); no zero-filling.
with index_dates as (
    select
        patient_key,
        {{ imaging_days_between('index_date', 'landmark_date') }} as landmark_days
    from {{ ref('int_ehr__index_dates') }}
),

studies as (
    select
        study_key,
        patient_key,
        modality,
        body_part_examined,
        days_from_index
    from {{ ref('stg_imaging__studies') }}
),

-- Studies observable at the landmark, newest first (ties broken by key, deterministically).
observed as (
    select
        studies.study_key,
        studies.patient_key,
        studies.modality,
        studies.body_part_examined,
        studies.days_from_index,
        row_number() over (
            partition by studies.patient_key
            order by studies.days_from_index desc, studies.study_key asc
        ) as recency_rank,
        count(*) over (partition by studies.patient_key) as n_studies
    from studies
    inner join index_dates
        on studies.patient_key = index_dates.patient_key
    where studies.days_from_index <= index_dates.landmark_days
),

baseline as (
    select
        study_key,
        patient_key,
        modality,
        body_part_examined,
        days_from_index,
        n_studies
    from observed
    where recency_rank = 1
),

features as (
    select
        series_key,
        study_key,
        status,
        segmentation,
        has_lesion,
        n_slices,
        lesion_volume_ml,
        lesion_diameter_mm,
        shape_max_diameter_mm,
        firstorder_mean,
        firstorder_std,
        firstorder_entropy,
        firstorder_skewness,
        firstorder_kurtosis,
        shape_sphericity,
        glcm_contrast,
        glcm_homogeneity,
        glcm_energy,
        glcm_correlation,
        glcm_entropy,
        glcm_dissimilarity,
        glrlm_short_run_emphasis,
        glrlm_long_run_emphasis,
        glrlm_run_percentage,
        glrlm_gray_level_nonuniformity_normalized,
        glrlm_run_length_nonuniformity_normalized,
        glrlm_run_entropy
    from {{ ref('stg_imaging__features') }}
),

-- The series that represents the baseline study: computed before failed, a segmented lesion
-- before a whole-volume fallback, then the most slices.
baseline_series as (
    select
        features.series_key,
        features.study_key,
        features.status,
        features.segmentation,
        features.has_lesion,
        features.lesion_volume_ml,
        features.lesion_diameter_mm,
        features.shape_max_diameter_mm,
        features.firstorder_mean,
        features.firstorder_std,
        features.firstorder_entropy,
        features.firstorder_skewness,
        features.firstorder_kurtosis,
        features.shape_sphericity,
        features.glcm_contrast,
        features.glcm_homogeneity,
        features.glcm_energy,
        features.glcm_correlation,
        features.glcm_entropy,
        features.glcm_dissimilarity,
        features.glrlm_short_run_emphasis,
        features.glrlm_long_run_emphasis,
        features.glrlm_run_percentage,
        features.glrlm_gray_level_nonuniformity_normalized,
        features.glrlm_run_length_nonuniformity_normalized,
        features.glrlm_run_entropy,
        row_number() over (
            partition by features.study_key
            order by
                case when features.status = 'ok' then 0 else 1 end asc,
                case when features.has_lesion then 0 else 1 end asc,
                features.n_slices desc,
                features.series_key asc
        ) as series_rank
    from features
    inner join baseline
        on features.study_key = baseline.study_key
)

select
    baseline.patient_key,
    baseline.study_key as baseline_study_key,
    baseline.days_from_index,
    cast(baseline.n_studies as int) as n_studies,
    baseline.modality,
    baseline.body_part_examined,
    baseline_series.status as feature_status,
    baseline_series.segmentation,
    baseline_series.has_lesion,
    baseline_series.lesion_volume_ml,
    baseline_series.lesion_diameter_mm,
    baseline_series.shape_max_diameter_mm as lesion_max_3d_diameter_mm,
    baseline_series.firstorder_mean,
    baseline_series.firstorder_std,
    baseline_series.firstorder_entropy,
    baseline_series.firstorder_skewness,
    baseline_series.firstorder_kurtosis,
    baseline_series.shape_sphericity,
    baseline_series.glcm_contrast,
    baseline_series.glcm_homogeneity,
    baseline_series.glcm_energy,
    baseline_series.glcm_correlation,
    baseline_series.glcm_entropy,
    baseline_series.glcm_dissimilarity,
    baseline_series.glrlm_short_run_emphasis,
    baseline_series.glrlm_long_run_emphasis,
    baseline_series.glrlm_run_percentage,
    baseline_series.glrlm_gray_level_nonuniformity_normalized,
    baseline_series.glrlm_run_length_nonuniformity_normalized,
    baseline_series.glrlm_run_entropy
from baseline
left join baseline_series
    on
        baseline.study_key = baseline_series.study_key
        and baseline_series.series_rank = 1
