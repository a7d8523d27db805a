{{ config(file_format=lakehouse_file_format()) }}

-- The study's time zero per patient, shared by every modality: the index date is the primary
-- cancer diagnosis date, and features may only use data observed on or before the landmark
-- (index + var('feature_landmark_days')). The outcome window (index, index + 365 d] starts
-- after the index date, so features known by the landmark never see the label being set.
with diagnoses as (
    select
        patient_key,
        diagnosis_date
    from {{ ref('int_ehr__oncology_diagnoses') }}
)

select
    patient_key,
    diagnosis_date as index_date,
    {{ ehr_add_days('diagnosis_date', var('feature_landmark_days', 30)) }} as landmark_date
from diagnoses
