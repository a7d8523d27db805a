{{ config(file_format=lakehouse_file_format()) }}

-- The prediction target, one row per diagnosed patient, from the EHR alone: progression
-- within 365 days of the primary cancer diagnosis. Progression is recorded as mCODE cancer
-- disease status (LOINC 97509-4) with value SNOMED 271299001 "Patient's condition worsened".
-- The window is (index_date, index_date + 365 days]: an assessment on the index date itself
-- describes the disease at diagnosis, not progression after it, and day 365 is still within
-- twelve months. Patients with no assessment in the window are labelled 0 but flagged
-- (has_followup_assessment = false): the label of a patient lost to follow-up is unknown.
with index_dates as (
    select
        patient_key,
        index_date,
        landmark_date,
        {{ ehr_add_days('index_date', 365) }} as observation_end
    from {{ ref('int_ehr__index_dates') }}
),

disease_status as (
    select
        patient_key,
        effective_date,
        value_code
    from {{ ref('stg_ehr__observations') }}
    where loinc_code = '97509-4' and effective_date is not null
),

in_window as (
    select
        index_dates.patient_key,
        disease_status.effective_date,
        disease_status.value_code
    from index_dates
    inner join disease_status
        on
            index_dates.patient_key = disease_status.patient_key
            and index_dates.index_date < disease_status.effective_date
            and index_dates.observation_end >= disease_status.effective_date
),

assessments as (
    select
        patient_key,
        count(*) as n_assessments,
        max(effective_date) as last_assessment_date,
        min(case when value_code = '271299001' then effective_date end) as progression_date
    from in_window
    group by patient_key
)

select
    index_dates.patient_key,
    index_dates.index_date,
    index_dates.landmark_date,
    index_dates.observation_end,
    assessments.progression_date,
    cast(coalesce(assessments.n_assessments, 0) as int) as n_assessments,
    assessments.last_assessment_date,
    case when assessments.progression_date is not null then 1 else 0 end as label,
    case
        when assessments.progression_date is not null then 'mcode_disease_status_worsened'
        when assessments.n_assessments > 0 then 'mcode_disease_status_not_worsened'
        else 'no_assessment'
    end as label_source,
    coalesce(assessments.n_assessments, 0) > 0 as has_followup_assessment
from index_dates
left join assessments
    on index_dates.patient_key = assessments.patient_key
