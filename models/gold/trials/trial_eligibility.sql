{{ config(file_format=lakehouse_file_format()) }}

-- Trial pre-screening, one row per patient x trial x criterion: is the criterion met, not met,
-- or unknown because the data that would decide it is missing, and which record decided it.
-- Time point: the patient's landmark (int_ehr__index_dates.landmark_date, index date +
-- feature_landmark_days); only records dated on or before it are read, so the screen shows
-- what the chart said then and a rebuild on later data does not change it.
-- Each kind first answers "does the criterion's condition hold?" (true / false / null when
-- unknowable); an inclusion is met when it holds, an exclusion when it does not.

-- Every patient of the oncology cohort against every criterion, with the patient's landmark.
with screened as (
    select
        cohort.patient_key,
        cohort.cancer_type,
        cohort.stage,
        cohort.stage_group,
        cohort.index_date,
        index_dates.landmark_date,
        criteria.criterion_id,
        criteria.trial_id,
        criteria.criterion_type,
        criteria.kind,
        criteria.code,
        criteria.operator,
        criteria.value,
        criteria.description
    from {{ ref('oncology_cohort') }} as cohort
    inner join {{ ref('int_ehr__index_dates') }} as index_dates
        on cohort.patient_key = index_dates.patient_key
    cross join {{ ref('trial_criteria') }} as criteria
),

-- Diagnosis and stage: the primary diagnosis of the oncology cohort (known at the index date).
diagnosis_checks as (
    select
        patient_key,
        criterion_id,
        case
            when cancer_type is null then null
            when kind = 'diagnosis' then {{ trials_in_list('value', 'cancer_type') }}
            else {{ trials_compare('stage', 'operator', 'value') }}
        end as holds,
        'gold.oncology_cohort' as evidence_table,
        patient_key as evidence_key,
        case
            when kind = 'diagnosis' then cancer_type
            else coalesce(stage_group, cast(stage as string))
        end as evidence_value,
        index_date as evidence_date,
        'structured' as evidence_method
    from screened
    where kind in ('diagnosis', 'stage')
),

-- ECOG 0-5 and labs: the latest valid value on or before the landmark, as features_clinical.
observations as (
    select
        observations.patient_key,
        observations.observation_id,
        observations.effective_at,
        observations.effective_date,
        case when observations.loinc_code = '89247-1' then 'ecog' else observations.analyte end
            as code,
        case
            when observations.loinc_code = '89247-1'
                then {{ trials_ecog_score('observations') }}
            else observations.value_canonical
        end as value_number,
        case
            when observations.loinc_code = '89247-1' then ''
            else concat(' ', coalesce(observations.canonical_unit, ''))
        end as unit_suffix
    from {{ ref('stg_ehr__observations') }} as observations
    inner join {{ ref('int_ehr__index_dates') }} as index_dates
        on
            observations.patient_key = index_dates.patient_key
            and observations.effective_date <= index_dates.landmark_date
    where observations.loinc_code != '97509-4'
),

latest_observations as (
    select
        patient_key,
        observation_id,
        effective_date,
        code,
        value_number,
        unit_suffix,
        row_number() over (
            partition by patient_key, code
            order by effective_at desc, observation_id desc
        ) as recency_rank
    from observations
    where
        code is not null
        and value_number is not null
        and (code != 'ecog' or value_number between 0 and 5)
),

measurement_checks as (
    select  -- noqa: ST06
        screened.patient_key,
        screened.criterion_id,
        {{ trials_compare('latest.value_number', 'screened.operator', 'screened.value') }}
            as holds,
        case when latest.observation_id is not null then 'silver.stg_ehr__observations' end
            as evidence_table,
        latest.observation_id as evidence_key,
        case
            when latest.observation_id is null then 'no result by the landmark'
            else concat(cast(latest.value_number as string), latest.unit_suffix)
        end as evidence_value,
        latest.effective_date as evidence_date,
        'structured' as evidence_method
    from screened
    left join latest_observations as latest
        on
            screened.patient_key = latest.patient_key
            and screened.code = latest.code
            and latest.recency_rank = 1
    where screened.kind in ('ecog', 'lab')
),

-- Biomarkers: called in a specimen collected by the landmark. Without a specimen sequenced by
-- then (no row in features_genomics) the biomarker is unknown, not absent.
biomarker_hits as (
    select
        screened.patient_key,
        screened.criterion_id,
        biomarkers.patient_biomarker_id,
        biomarkers.first_detected_date,
        concat(
            biomarkers.biomarker_name,
            ' (VAF ', coalesce(cast(biomarkers.vaf as string), 'not reported'), ')'
        ) as evidence_value,
        row_number() over (
            partition by screened.patient_key, screened.criterion_id
            order by biomarkers.first_detected_date asc, biomarkers.patient_biomarker_id asc
        ) as hit_rank
    from screened
    inner join {{ ref('genomic_biomarkers') }} as biomarkers
        on
            screened.patient_key = biomarkers.patient_key
            and screened.landmark_date >= biomarkers.first_detected_date
            and biomarkers.biomarker_kind = 'hotspot_variant'
    where
        screened.kind = 'biomarker'
        and (
            (
                screened.code = 'biomarker_name'
                and {{ trials_in_list('screened.value', 'biomarkers.biomarker_name') }}
            )
            or (
                screened.code = 'gene_symbol'
                and biomarkers.biomarker_role = 'driver'
                and {{ trials_in_list('screened.value', 'biomarkers.gene_symbol') }}
            )
        )
),

biomarker_checks as (
    select
        screened.patient_key,
        screened.criterion_id,
        case
            when hits.patient_biomarker_id is not null then true
            when tested.patient_key is not null then false
        end as holds,
        case
            when hits.patient_biomarker_id is not null then 'gold.genomic_biomarkers'
            when tested.patient_key is not null then 'gold.features_genomics'
        end as evidence_table,
        coalesce(hits.patient_biomarker_id, tested.patient_key) as evidence_key,
        case
            when hits.patient_biomarker_id is not null then hits.evidence_value
            when tested.patient_key is not null
                then
                    concat(
                        'not detected in ', cast(tested.n_samples as string),
                        ' specimen(s) collected by the landmark'
                    )
            else 'no tumour specimen sequenced by the landmark'
        end as evidence_value,
        hits.first_detected_date as evidence_date,
        'structured' as evidence_method
    from screened
    {{ trials_deciding_record('biomarker_hits', 'hits') }}
    left join {{ ref('features_genomics') }} as tested
        on screened.patient_key = tested.patient_key
    where screened.kind = 'biomarker'
),

-- Prior therapy: a non-cancelled order of a matching drug authored by the landmark. The EHR
-- order list is taken as complete, so no matching order means the therapy was not given.
therapy_hits as (
    select
        screened.patient_key,
        screened.criterion_id,
        medications.medication_request_id,
        drugs.drug_name,
        medications.authored_date,
        row_number() over (
            partition by screened.patient_key, screened.criterion_id
            order by medications.authored_date asc, medications.medication_request_id asc
        ) as hit_rank
    from screened
    inner join {{ ref('stg_ehr__medications') }} as medications
        on
            screened.patient_key = medications.patient_key
            and screened.landmark_date >= medications.authored_date
    inner join {{ ref('oncology_drugs') }} as drugs
        on medications.rxnorm_code = drugs.rxnorm_code
    where
        screened.kind = 'prior_therapy'
        and coalesce(medications.status, '') != 'cancelled'
        and (
            (
                screened.code = 'target_gene'
                and {{ trials_in_list('screened.value', 'drugs.target_gene') }}
            )
            or (
                screened.code = 'therapy_class'
                and {{ trials_in_list('screened.value', 'drugs.therapy_class') }}
            )
            or (
                screened.code = 'rxnorm_code'
                and {{ trials_in_list('screened.value', 'drugs.rxnorm_code') }}
            )
        )
),

therapy_checks as (
    select
        screened.patient_key,
        screened.criterion_id,
        hits.medication_request_id is not null as holds,
        'silver.stg_ehr__medications' as evidence_table,
        hits.medication_request_id as evidence_key,
        coalesce(hits.drug_name, 'no matching order by the landmark') as evidence_value,
        hits.authored_date as evidence_date,
        'structured' as evidence_method
    from screened
    {{ trials_deciding_record('therapy_hits', 'hits') }}
    where screened.kind = 'prior_therapy'
),

-- Facts only the notes hold (brain metastases): NLP mentions in notes dated by the landmark.
-- Present when any mention is affirmed (not negated, uncertain, historical, hypothetical or a
-- relative's); absent when none is and at least one negated mention about the patient says
-- so ("no evidence of brain metastases"); otherwise - only "rule out", historical or no
-- mention at all - unknown. A negated mention is never the fact.
mentions as (
    select
        screened.patient_key,
        screened.criterion_id,
        entities.note_key,
        entities.note_date,
        entities.entity_text,
        entities.rule_id,
        case
            when
                not (
                    entities.negated or entities.uncertain or entities.historical
                    or entities.hypothetical or entities.family
                )
                then 'affirmed'
            when entities.negated and not (entities.family or entities.hypothetical)
                then 'negated'
            when entities.uncertain then 'uncertain'
            when entities.historical then 'historical'
            when entities.hypothetical then 'hypothetical'
            else 'family'
        end as assertion_status
    from screened
    inner join {{ ref('int_notes__entities') }} as entities
        on
            screened.patient_key = entities.patient_key
            and screened.landmark_date >= entities.note_date
    where
        screened.kind = 'notes_fact'
        and screened.code = 'concept'
        and {{ trials_in_list('screened.value', 'entities.concept') }}
),

ranked_mentions as (
    select
        patient_key,
        criterion_id,
        note_key,
        note_date,
        entity_text,
        rule_id,
        assertion_status,
        max(case when assertion_status = 'affirmed' then 1 else 0 end) over (
            partition by patient_key, criterion_id
        ) as any_affirmed,
        max(case when assertion_status = 'negated' then 1 else 0 end) over (
            partition by patient_key, criterion_id
        ) as any_negated,
        -- The deciding mention: an affirmed one, else a negated one, else the latest other.
        row_number() over (
            partition by patient_key, criterion_id
            order by
                case assertion_status when 'affirmed' then 0 when 'negated' then 1 else 2 end,
                note_date desc,
                note_key asc,
                entity_text asc
        ) as hit_rank
    from mentions
),

notes_checks as (
    select
        screened.patient_key,
        screened.criterion_id,
        case
            when mentions.any_affirmed = 1 then true
            when mentions.any_negated = 1 then false
        end as holds,
        case when mentions.note_key is not null then 'silver.int_notes__entities' end
            as evidence_table,
        mentions.note_key as evidence_key,
        case
            when mentions.note_key is null then 'not mentioned in notes by the landmark'
            else concat(mentions.entity_text, ' [', mentions.assertion_status, ']')
        end as evidence_value,
        mentions.note_date as evidence_date,
        case
            when mentions.rule_id is not null then concat('nlp:', mentions.rule_id) else 'nlp'
        end as evidence_method
    from screened
    {{ trials_deciding_record('ranked_mentions', 'mentions') }}
    where screened.kind = 'notes_fact'
),

checks as (
    select * from diagnosis_checks
    union all
    select * from measurement_checks
    union all
    select * from biomarker_checks
    union all
    select * from therapy_checks
    union all
    select * from notes_checks
)

select  -- noqa: ST06
    screened.patient_key,
    screened.trial_id,
    screened.criterion_id,
    screened.kind as criterion_kind,
    screened.criterion_type,
    screened.description as criterion_description,
    case
        when checks.holds is null then 'unknown'
        when checks.holds = (screened.criterion_type = 'inclusion') then 'met'
        else 'not_met'
    end as status,
    checks.evidence_table,
    checks.evidence_key,
    checks.evidence_value,
    checks.evidence_date,
    coalesce(checks.evidence_method, 'structured') as method,  -- noqa: RF04
    screened.landmark_date as eligibility_date
from screened
left join checks
    on
        screened.patient_key = checks.patient_key
        and screened.criterion_id = checks.criterion_id
