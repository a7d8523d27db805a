{{ config(file_format=lakehouse_file_format()) }}

-- The primary cancer of each patient: one row per patient_key with the diagnosis code, the
-- cancer type (seed cancer_types), the diagnosis date and the stage at diagnosis.
--
-- Candidates are malignant Conditions: ICD-10-CM C00-C76 and C81-C96 (C77-C79 are secondary
-- deposits and C80 an unknown primary, neither is a primary diagnosis), or a SNOMED code the
-- seed knows. The primary is the earliest onset; on a tie the one that carries an mCODE stage
-- (the primary-cancer-condition profile) wins.
--
-- Stage: Condition.stage.summary (SNOMED stage group, or for CNS tumours, which AJCC does not
-- stage, the WHO grade) and, when the Condition has none, the earliest mCODE stage-group
-- Observation (LOINC 21908-9 clinical / 21902-2 pathologic) of the patient.
with conditions as (
    select
        patient_key,
        condition_id,
        code,
        code_display,
        icd10cm_code,
        icd10cm_display,
        snomed_code,
        snomed_display,
        onset_date,
        recorded_at,
        stage_summary_code,
        stage_summary_text
    from {{ ref('stg_ehr__conditions') }}
    where onset_date is not null
),

cancer_types as (
    select
        code_system,
        code_prefix,
        cancer_type,
        cancer_type_display,
        primary_site
    from {{ ref('cancer_types') }}
),

-- Every seed row a condition matches; the longest (most specific) prefix wins below.
typed as (
    select
        conditions.condition_id,
        cancer_types.cancer_type,
        cancer_types.cancer_type_display,
        cancer_types.primary_site,
        row_number() over (
            partition by conditions.condition_id
            order by
                case when cancer_types.code_system = 'icd10cm' then 0 else 1 end,
                length(cancer_types.code_prefix) desc
        ) as match_rank
    from conditions
    inner join cancer_types
        on (
            cancer_types.code_system = 'icd10cm'
            and substr(conditions.icd10cm_code, 1, length(cancer_types.code_prefix))
            = cancer_types.code_prefix
        )
        or (
            cancer_types.code_system = 'snomed'
            and conditions.snomed_code = cancer_types.code_prefix
        )
),

malignant as (
    select
        conditions.patient_key,
        conditions.condition_id,
        conditions.code,
        conditions.code_display,
        conditions.icd10cm_code,
        conditions.icd10cm_display,
        conditions.snomed_code,
        conditions.snomed_display,
        conditions.onset_date,
        conditions.recorded_at,
        conditions.stage_summary_code,
        conditions.stage_summary_text,
        typed.cancer_type,
        typed.cancer_type_display,
        typed.primary_site
    from conditions
    left join typed
        on
            conditions.condition_id = typed.condition_id
            and typed.match_rank = 1
    where
        typed.cancer_type is not null
        or (
            substr(conditions.icd10cm_code, 1, 1) = 'C'
            and substr(conditions.icd10cm_code, 2, 2) not in ('77', '78', '79', '80')
        )
),

ranked as (
    select
        patient_key,
        condition_id,
        code,
        code_display,
        icd10cm_code,
        icd10cm_display,
        snomed_code,
        snomed_display,
        onset_date,
        stage_summary_code,
        stage_summary_text,
        cancer_type,
        cancer_type_display,
        primary_site,
        row_number() over (
            partition by patient_key
            order by
                onset_date asc,
                case when stage_summary_code is not null then 0 else 1 end,
                recorded_at asc,
                condition_id asc
        ) as diagnosis_rank
    from malignant
),

-- mCODE stage-group Observations, the fallback when the Condition carries no stage.
stage_observations as (
    select
        patient_key,
        value_code,
        value_code_display,
        row_number() over (
            partition by patient_key
            order by effective_at asc, observation_id asc
        ) as stage_rank
    from {{ ref('stg_ehr__observations') }}
    where loinc_code in ('21908-9', '21902-2') and value_code is not null
),

primary_cancer as (
    select
        ranked.patient_key,
        ranked.condition_id,
        ranked.code,
        ranked.code_display,
        ranked.icd10cm_code,
        ranked.icd10cm_display,
        ranked.snomed_code,
        ranked.snomed_display,
        ranked.onset_date,
        ranked.cancer_type,
        ranked.cancer_type_display,
        ranked.primary_site,
        coalesce(ranked.stage_summary_code, stage_observations.value_code) as stage_code,
        coalesce(ranked.stage_summary_text, stage_observations.value_code_display) as stage_text
    from ranked
    left join stage_observations
        on
            ranked.patient_key = stage_observations.patient_key
            and stage_observations.stage_rank = 1
    where ranked.diagnosis_rank = 1
),

-- Stage group as written ('IIIA'), read from the text when it has the AJCC form.
staged as (
    select
        patient_key,
        condition_id,
        code,
        code_display,
        icd10cm_code,
        icd10cm_display,
        snomed_code,
        snomed_display,
        onset_date,
        cancer_type,
        cancer_type_display,
        primary_site,
        stage_code,
        stage_text,
        trim(regexp_replace(upper(trim(stage_text)), '^STAGE +', '')) as stage_group_raw
    from primary_cancer
),

-- Birth dates live only in the restricted identifiers table; the age derived from them is
-- not identifying and is exact, unlike a birth-year difference.
birth_dates as (
    select
        patient_key,
        min(birth_date) as birth_date
    from {{ ref('stg_ehr__patient_identifiers') }}
    group by patient_key
)

-- Identifiers first, then the clinical content, in source order.
select  -- noqa: ST06
    staged.patient_key,
    staged.condition_id,
    coalesce(staged.icd10cm_code, staged.code) as diagnosis_code,
    case
        when staged.icd10cm_code is not null then 'icd10cm' else 'other'
    end as diagnosis_code_system,
    coalesce(staged.icd10cm_display, staged.code_display) as diagnosis_display,
    staged.snomed_code as diagnosis_snomed_code,
    staged.snomed_display as diagnosis_snomed_display,
    staged.onset_date as diagnosis_date,
    cast(
        year(staged.onset_date) - year(birth_dates.birth_date)
        - case
            when
                month(staged.onset_date) < month(birth_dates.birth_date)
                or (
                    month(staged.onset_date) = month(birth_dates.birth_date)
                    and dayofmonth(staged.onset_date) < dayofmonth(birth_dates.birth_date)
                )
                then 1
            else 0
        end as int
    ) as age_at_diagnosis,
    coalesce(staged.cancer_type, 'other') as cancer_type,
    coalesce(staged.cancer_type_display, 'Other malignant neoplasm') as cancer_type_display,
    staged.primary_site,
    staged.stage_code,
    staged.stage_text,
    -- AJCC stage 1-4 from the SNOMED stage group; CNS tumours: WHO grade 4 stands in as 4.
    case
        when staged.stage_code = '258215001' then 1
        when staged.stage_code = '258219007' then 2
        when staged.stage_code = '258224005' then 3
        when staged.stage_code in ('258228008', '396925001') then 4
        when staged.stage_group_raw like 'IV%' or staged.stage_group_raw like '4%' then 4
        when staged.stage_group_raw like 'III%' or staged.stage_group_raw like '3%' then 3
        when staged.stage_group_raw like 'II%' or staged.stage_group_raw like '2%' then 2
        when staged.stage_group_raw like 'I%' or staged.stage_group_raw like '1%' then 1
    end as stage_number,
    case
        when staged.stage_group_raw like 'I%' or staged.stage_group_raw like '0%'
            then staged.stage_group_raw
    end as stage_group
from staged
left join birth_dates
    on staged.patient_key = birth_dates.patient_key
