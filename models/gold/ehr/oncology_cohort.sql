{{ config(file_format=lakehouse_file_format()) }}

-- The oncology cohort as analysts filter it (similar-case search, trial pre-screening):
-- one row per diagnosed patient with the primary diagnosis, stage, index date, sex and a
-- ten-year age band (coarse enough to publish widely; exact age lives in features_clinical).
with diagnoses as (
    select
        patient_key,
        cancer_type,
        cancer_type_display,
        diagnosis_code,
        diagnosis_code_system,
        diagnosis_display,
        diagnosis_date,
        age_at_diagnosis,
        primary_site,
        stage_number,
        stage_group,
        stage_text
    from {{ ref('int_ehr__oncology_diagnoses') }}
),

patients as (
    select
        patient_key,
        sex
    from {{ ref('stg_ehr__patients') }}
)

select
    diagnoses.patient_key,
    diagnoses.cancer_type,
    diagnoses.cancer_type_display,
    diagnoses.diagnosis_code,
    diagnoses.diagnosis_code_system,
    diagnoses.diagnosis_display,
    cast(diagnoses.stage_number as int) as stage,  -- noqa: RF04
    diagnoses.stage_group,
    diagnoses.stage_text,
    diagnoses.primary_site,
    diagnoses.diagnosis_date as index_date,
    patients.sex,
    case
        when diagnoses.age_at_diagnosis is null then null
        when diagnoses.age_at_diagnosis < 40 then '<40'
        when diagnoses.age_at_diagnosis >= 80 then '80+'
        else
            concat(
                cast(cast(floor(diagnoses.age_at_diagnosis / 10) * 10 as int) as string),
                '-',
                cast(cast(floor(diagnoses.age_at_diagnosis / 10) * 10 + 9 as int) as string)
            )
    end as age_band
from diagnoses
left join patients
    on diagnoses.patient_key = patients.patient_key
