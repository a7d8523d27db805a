-- Accounting of the trial screen: every patient of the oncology cohort with an index date is
-- screened once for every criterion of every trial (no criterion silently skipped because its
-- kind or parameters were not understood - those must come out as 'unknown'); no evidence is
-- dated after the landmark it was judged at; and every trial_matches verdict is the one its
-- criteria imply. Any row returned is a problem.
with expected as (
    select
        cohort.patient_key,
        criteria.criterion_id
    from {{ ref('oncology_cohort') }} as cohort
    inner join {{ ref('int_ehr__index_dates') }} as index_dates
        on cohort.patient_key = index_dates.patient_key
    cross join {{ ref('trial_criteria') }} as criteria
),

eligibility as (
    select
        patient_key,
        trial_id,
        criterion_id,
        status,
        evidence_date,
        eligibility_date
    from {{ ref('trial_eligibility') }}
),

missing as (
    select
        expected.patient_key,
        expected.criterion_id,
        'criterion not screened' as problem
    from expected
    left join eligibility
        on
            expected.patient_key = eligibility.patient_key
            and expected.criterion_id = eligibility.criterion_id
    where eligibility.patient_key is null
),

late_evidence as (
    select
        patient_key,
        criterion_id,
        'evidence dated after the landmark' as problem
    from eligibility
    where evidence_date > eligibility_date
),

implied as (
    select
        patient_key,
        trial_id,
        case
            when sum(case when status = 'not_met' then 1 else 0 end) > 0 then 'not_eligible'
            when sum(case when status = 'unknown' then 1 else 0 end) > 0
                then 'possibly_eligible'
            else 'eligible'
        end as status
    from eligibility
    group by patient_key, trial_id
),

wrong_verdicts as (
    select
        implied.patient_key,
        implied.trial_id as criterion_id,
        'trial_matches verdict differs from its criteria' as problem
    from implied
    left join {{ ref('trial_matches') }} as matches
        on
            implied.patient_key = matches.patient_key
            and implied.trial_id = matches.trial_id
    where matches.status is null or matches.status != implied.status
)

select
    patient_key,
    criterion_id,
    problem
from missing
union all
select
    patient_key,
    criterion_id,
    problem
from late_evidence
union all
select
    patient_key,
    criterion_id,
    problem
from wrong_verdicts
