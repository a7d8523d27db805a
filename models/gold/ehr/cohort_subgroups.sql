{{ config(file_format=lakehouse_file_format()) }}

-- The subgroups the model evaluation reports on (sex, age band, race, ethnicity, site), one
-- row per patient of the EHR spine. These attributes are deliberately not features: they sit
-- in their own table, read only by the evaluation, so that no model is trained on them.
--
-- Race and ethnicity: the value the Patient carries (a CDC Race & Ethnicity code or, when the
-- export keeps only the US Core extension's text, its display) is looked up in the seed
-- race_ethnicity_codes; no value or an unknown one is 'Unknown'.
-- Site: the organisation of most of the patient's visits on or before the landmark (all
-- visits for a patient without an index date); a tie goes to the site visited first.
with patients as (
    select
        patient_key,
        sex,
        race_code,
        ethnicity_code
    from {{ ref('stg_ehr__patients') }}
),

index_dates as (
    select
        patient_key,
        landmark_date
    from {{ ref('int_ehr__index_dates') }}
),

diagnoses as (
    select
        patient_key,
        age_at_diagnosis
    from {{ ref('int_ehr__oncology_diagnoses') }}
),

codes as (
    select
        attribute,
        code,
        display
    from {{ ref('race_ethnicity_codes') }}
),

-- Every seed row reachable by its code and by its display, matched case-insensitively.
code_lookup as (
    select
        attribute,
        lower(code) as match_key,
        display
    from codes
    union all
    select
        attribute,
        lower(display) as match_key,
        display
    from codes
),

visits as (
    select
        encounters.patient_key,
        encounters.period_start,
        trim(encounters.service_provider) as site
    from {{ ref('stg_ehr__encounters') }} as encounters
    left join index_dates
        on encounters.patient_key = index_dates.patient_key
    where
        nullif(trim(encounters.service_provider), '') is not null
        and (
            index_dates.landmark_date is null
            or encounters.encounter_date <= index_dates.landmark_date
        )
),

site_visits as (
    select
        patient_key,
        site,
        count(*) as n_visits,
        min(period_start) as first_visit_at
    from visits
    group by patient_key, site
),

sites as (
    select
        patient_key,
        site,
        row_number() over (
            partition by patient_key
            order by n_visits desc, first_visit_at asc, site asc
        ) as site_rank
    from site_visits
),

subgroups as (
    select
        patients.patient_key,
        cast(diagnoses.age_at_diagnosis as int) as age_at_index,
        coalesce(patients.sex, 'unknown') as sex,
        case
            when diagnoses.age_at_diagnosis is null then null
            when diagnoses.age_at_diagnosis < 50 then '<50'
            when diagnoses.age_at_diagnosis < 65 then '50-64'
            when diagnoses.age_at_diagnosis < 75 then '65-74'
            else '75+'
        end as age_band,
        coalesce(races.display, 'Unknown') as race,
        coalesce(ethnicities.display, 'Unknown') as ethnicity,
        coalesce(sites.site, 'Unknown') as site
    from patients
    left join diagnoses
        on patients.patient_key = diagnoses.patient_key
    left join code_lookup as races
        on
            races.attribute = 'race'
            and lower(trim(patients.race_code)) = races.match_key
    left join code_lookup as ethnicities
        on
            ethnicities.attribute = 'ethnicity'
            and lower(trim(patients.ethnicity_code)) = ethnicities.match_key
    left join sites
        on
            patients.patient_key = sites.patient_key
            and sites.site_rank = 1
)

select
    patient_key,
    sex,
    age_at_index,
    age_band,
    race,
    ethnicity,
    site
from subgroups
