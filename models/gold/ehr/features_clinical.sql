{{ config(file_format=lakehouse_file_format()) }}

-- Clinical features per patient as known at the landmark (index date + feature_landmark_days):
-- demographics, cancer type and stage at diagnosis, the latest ECOG and baseline labs in
-- canonical units, therapy started by the landmark and care-utilisation counts.
-- Leakage rules: every record used is dated on or before the landmark (an order authored
-- the day after the landmark does not exist for the model), and mCODE disease-status
-- observations (LOINC 97509-4), which carry the outcome, are never read.
{%- set labs = [
    ('albumin', 'albumin_g_dl'),
    ('ldh', 'ldh_u_l'),
    ('hemoglobin', 'hemoglobin_g_dl'),
    ('cea', 'cea_ng_ml'),
    ('body_weight', 'body_weight_kg'),
    ('heart_rate', 'heart_rate_per_min'),
] %}
with index_dates as (
    select
        patient_key,
        index_date,
        landmark_date
    from {{ ref('int_ehr__index_dates') }}
),

diagnoses as (
    select
        patient_key,
        condition_id,
        cancer_type,
        stage_number,
        stage_group,
        age_at_diagnosis
    from {{ ref('int_ehr__oncology_diagnoses') }}
),

patients as (
    select
        patient_key,
        sex
    from {{ ref('stg_ehr__patients') }}
),

-- Everything observed by the landmark, disease status excluded at the source.
observations as (
    select
        observations.patient_key,
        observations.observation_id,
        observations.loinc_code,
        observations.analyte,
        observations.value_canonical,
        observations.value_integer,
        observations.value_quantity,
        observations.value_code,
        observations.effective_at,
        observations.effective_date
    from {{ ref('stg_ehr__observations') }} as observations
    inner join index_dates
        on
            observations.patient_key = index_dates.patient_key
            and observations.effective_date <= index_dates.landmark_date
    where observations.loinc_code != '97509-4'
),

-- ECOG 0-5: valueInteger, a quantity, or the LOINC answer list LA9622-7..LA9627-6.
ecog_values as (
    select
        patient_key,
        effective_date,
        cast({{ ecog_score() }} as int) as ecog,
        row_number() over (
            partition by patient_key
            order by effective_at desc, observation_id desc
        ) as recency_rank
    from observations
    where loinc_code = '89247-1'
),

ecog as (
    select
        patient_key,
        ecog,
        effective_date as ecog_date
    from ecog_values
    where recency_rank = 1 and ecog between 0 and 5
),

lab_values as (
    select
        patient_key,
        analyte,
        value_canonical,
        effective_date,
        row_number() over (
            partition by patient_key, analyte
            order by effective_at desc, observation_id desc
        ) as recency_rank
    from observations
    where analyte is not null and value_canonical is not null
),

labs as (
    select
        patient_key,
        {%- for analyte, column in labs %}
            max(case when analyte = '{{ analyte }}' then value_canonical end) as {{ column }},
        {%- endfor %}
        max(effective_date) as last_lab_date
    from lab_values
    where recency_rank = 1
    group by patient_key
),

medications as (
    select
        medications.patient_key,
        medications.authored_date,
        medications.rxnorm_code,
        drugs.therapy_class
    from {{ ref('stg_ehr__medications') }} as medications
    inner join index_dates
        on
            medications.patient_key = index_dates.patient_key
            and medications.authored_date <= index_dates.landmark_date
    left join {{ ref('oncology_drugs') }} as drugs
        on medications.rxnorm_code = drugs.rxnorm_code
    where coalesce(medications.status, '') != 'cancelled'
),

therapy as (
    select
        patient_key,
        max(case when therapy_class = 'targeted' then 1 else 0 end) as targeted,
        max(case when therapy_class = 'immunotherapy' then 1 else 0 end) as immunotherapy,
        max(case when therapy_class = 'chemotherapy' then 1 else 0 end) as chemotherapy,
        max(case when therapy_class = 'endocrine' then 1 else 0 end) as endocrine,
        count(distinct rxnorm_code) as n_drugs,
        max(authored_date) as last_order_date
    from medications
    group by patient_key
),

encounters as (
    select
        encounters.patient_key,
        count(*) as n_encounters,
        max(encounters.encounter_date) as last_encounter_date
    from {{ ref('stg_ehr__encounters') }} as encounters
    inner join index_dates
        on
            encounters.patient_key = index_dates.patient_key
            and encounters.encounter_date <= index_dates.landmark_date
    group by encounters.patient_key
),

procedure_counts as (
    select
        procedure_rows.patient_key,
        count(*) as n_procedures,
        -- SNOMED 370612006 excision of neoplasm: the tumour was resected by the landmark.
        max(case when procedure_rows.code = '370612006' then 1 else 0 end) as resected,
        max(procedure_rows.performed_date) as last_procedure_date
    from {{ ref('stg_ehr__procedures') }} as procedure_rows
    inner join index_dates
        on
            procedure_rows.patient_key = index_dates.patient_key
            and procedure_rows.performed_date <= index_dates.landmark_date
    group by procedure_rows.patient_key
),

-- Other conditions known by the landmark (the primary cancer itself excluded). Known means
-- recorded: a long-standing condition first charted after the landmark was not known then.
conditions as (
    select
        patient_key,
        condition_id,
        code,
        coalesce(cast(recorded_at as date), onset_date) as known_date
    from {{ ref('stg_ehr__conditions') }}
),

comorbidities as (
    select
        conditions.patient_key,
        count(distinct conditions.code) as n_comorbidities,
        max(conditions.known_date) as last_condition_date
    from conditions
    inner join index_dates
        on
            conditions.patient_key = index_dates.patient_key
            and conditions.known_date <= index_dates.landmark_date
    left join diagnoses
        on conditions.condition_id = diagnoses.condition_id
    where diagnoses.condition_id is null
    group by conditions.patient_key
)

select
    index_dates.patient_key,
    index_dates.index_date,
    index_dates.landmark_date,
    cast(diagnoses.age_at_diagnosis as int) as age_at_index,
    patients.sex,
    diagnoses.cancer_type,
    cast(diagnoses.stage_number as int) as stage,  -- noqa: RF04
    diagnoses.stage_group,
    ecog.ecog,
    -- How old the ECOG is at the landmark (never negative: nothing later is read).
    {{ ehr_days_between('ecog.ecog_date', 'index_dates.landmark_date') }}
        as ecog_days_before_landmark,
    {%- for analyte, column in labs %}
        cast(labs.{{ column }} as double) as {{ column }},
    {%- endfor %}
    coalesce(therapy.targeted, 0) = 1 as targeted_therapy_by_landmark,
    coalesce(therapy.immunotherapy, 0) = 1 as immunotherapy_by_landmark,
    coalesce(therapy.chemotherapy, 0) = 1 as chemotherapy_by_landmark,
    coalesce(therapy.endocrine, 0) = 1 as endocrine_therapy_by_landmark,
    cast(coalesce(therapy.n_drugs, 0) as int) as n_drugs_ordered,
    cast(coalesce(encounters.n_encounters, 0) as int) as n_encounters,
    cast(coalesce(procedure_counts.n_procedures, 0) as int) as n_procedures,
    coalesce(procedure_counts.resected, 0) = 1 as resected_by_landmark,
    cast(coalesce(comorbidities.n_comorbidities, 0) as int) as n_comorbidities,
    -- Days from the newest record behind these features to the landmark: the leakage audit
    -- (never negative) and a measure of how current the picture is.
    {{ ehr_days_between(
        'greatest(
            coalesce(ecog.ecog_date, index_dates.index_date),
            coalesce(labs.last_lab_date, index_dates.index_date),
            coalesce(therapy.last_order_date, index_dates.index_date),
            coalesce(encounters.last_encounter_date, index_dates.index_date),
            coalesce(procedure_counts.last_procedure_date, index_dates.index_date),
            coalesce(comorbidities.last_condition_date, index_dates.index_date)
        )',
        'index_dates.landmark_date'
    ) }} as last_record_days_before_landmark
from index_dates
inner join diagnoses
    on index_dates.patient_key = diagnoses.patient_key
left join patients
    on index_dates.patient_key = patients.patient_key
left join ecog
    on index_dates.patient_key = ecog.patient_key
left join labs
    on index_dates.patient_key = labs.patient_key
left join therapy
    on index_dates.patient_key = therapy.patient_key
left join encounters
    on index_dates.patient_key = encounters.patient_key
left join procedure_counts
    on index_dates.patient_key = procedure_counts.patient_key
left join comorbidities
    on index_dates.patient_key = comorbidities.patient_key
