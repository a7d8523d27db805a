{{ config(file_format=lakehouse_file_format()) }}

-- One verdict per patient and trial from the per-criterion statuses of trial_eligibility:
-- eligible only when every criterion is met; possibly eligible when nothing failed but some
-- criteria could not be decided (missing data: a screening visit can supply it); otherwise
-- not eligible. A pre-screen for the research team, never an enrolment decision.
with eligibility as (
    select
        patient_key,
        trial_id,
        criterion_id,
        status,
        eligibility_date
    from {{ ref('trial_eligibility') }}
),

trials as (
    select
        trial_id,
        trial_title
    from {{ ref('trials') }}
),

counts as (
    select
        patient_key,
        trial_id,
        max(eligibility_date) as eligibility_date,
        count(*) as n_criteria,
        sum(case when status = 'met' then 1 else 0 end) as n_met,
        sum(case when status = 'not_met' then 1 else 0 end) as n_not_met,
        sum(case when status = 'unknown' then 1 else 0 end) as n_unknown
    from eligibility
    group by patient_key, trial_id
)

select  -- noqa: ST06
    counts.patient_key,
    counts.trial_id,
    trials.trial_title,
    case
        when counts.n_not_met > 0 then 'not_eligible'
        when counts.n_unknown > 0 then 'possibly_eligible'
        else 'eligible'
    end as status,
    cast(counts.n_criteria as int) as n_criteria,
    cast(counts.n_met as int) as n_met,
    cast(counts.n_not_met as int) as n_not_met,
    cast(counts.n_unknown as int) as n_unknown,
    counts.eligibility_date
from counts
inner join trials
    on counts.trial_id = trials.trial_id
