{{ config(file_format=lakehouse_file_format()) }}

-- The inventory of modalities and their missingness: which combinations of modalities occur,
-- how often, overall and per cancer type, with how many of those patients have a label. It is
-- what the fusion strategies are evaluated against (a strategy that needs every modality can
-- only ever serve the `complete` pattern's share).
with patients as (
    select
        patient_key,
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables,
        label,
        coalesce(cancer_type, 'unknown') as cancer_type
    from {{ ref('patient_multimodal') }}
),

-- Per cancer type, and over everybody as cohort 'all' (sqlfluff cannot parse GROUPING SETS).
by_cohort as (
    select
        cancer_type as cohort,
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables,
        cast(sum(label) as bigint) as n_positive,
        count(*) as n_patients,
        count(label) as n_labelled
    from patients
    group by
        cancer_type,
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables
),

overall as (
    select
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables,
        'all' as cohort,
        cast(sum(label) as bigint) as n_positive,
        count(*) as n_patients,
        count(label) as n_labelled
    from patients
    group by
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables
),

patterns as (
    select
        cohort,
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables,
        n_patients,
        n_labelled,
        n_positive
    from by_cohort
    union all
    select
        cohort,
        modality_pattern,
        n_modalities,
        has_ehr,
        has_genomics,
        has_imaging,
        has_notes,
        has_wearables,
        n_patients,
        n_labelled,
        n_positive
    from overall
),

cohort_sizes as (
    select
        cohort,
        cast(sum(n_patients) as bigint) as cohort_patients
    from patterns
    group by cohort
)

select
    patterns.cohort,
    patterns.modality_pattern,
    patterns.n_modalities,
    patterns.has_ehr,
    patterns.has_genomics,
    patterns.has_imaging,
    patterns.has_notes,
    patterns.has_wearables,
    patterns.n_patients,
    cohort_sizes.cohort_patients,
    patterns.n_labelled,
    patterns.n_positive,
    cast(patterns.n_patients as double) / cohort_sizes.cohort_patients as share_of_cohort
from patterns
inner join cohort_sizes on patterns.cohort = cohort_sizes.cohort
