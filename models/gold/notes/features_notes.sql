{{ config(file_format=lakehouse_file_format()) }}

-- Note features per patient as known at the landmark (index date + feature_landmark_days):
-- only notes dated on or before the landmark are read. Symptom burden is the number of
-- distinct symptoms the notes AFFIRM: a symptom that is denied, hedged, in the past, planned
-- for ("call for fever") or a relative's is a distractor and is never counted. ECOG is the
-- latest score documented by the landmark; medication changes are starts, stops, holds,
-- dose changes and switches in the 90 days up to it. One row per patient with such notes.
with index_dates as (
    select
        patient_key,
        index_date,
        landmark_date
    from {{ ref('int_ehr__index_dates') }}
),

notes as (
    select
        n.patient_key,
        n.note_key,
        n.note_date,
        i.landmark_date
    from {{ ref('stg_notes__notes') }} as n
    inner join index_dates as i on n.patient_key = i.patient_key
    where not n.is_empty and n.note_date <= i.landmark_date
),

note_summary as (
    select
        patient_key,
        max(landmark_date) as landmark_date,
        count(distinct note_key) as n_notes,
        max(note_date) as last_note_date
    from notes
    group by patient_key
),

symptoms as (
    select
        e.patient_key,
        e.concept,
        e.concept_class
    from {{ ref('int_notes__entities') }} as e
    inner join notes as n on e.note_key = n.note_key
    where
        e.category = 'symptom'
        and not e.negated
        and not e.uncertain
        and not e.historical
        and not e.hypothetical
        and not e.family
),

symptom_counts as (
    select
        patient_key,
        count(*) as n_affirmed_symptom_mentions,
        count(distinct concept) as n_affirmed_symptoms,
        count(distinct case when concept_class = 'respiratory' then concept end)
            as n_symptoms_respiratory,
        count(distinct case when concept_class = 'constitutional' then concept end)
            as n_symptoms_constitutional,
        count(distinct case when concept_class = 'gastrointestinal' then concept end)
            as n_symptoms_gastrointestinal,
        count(distinct case when concept_class = 'neurological' then concept end)
            as n_symptoms_neurological,
        count(distinct case when concept_class = 'pain' then concept end) as n_symptoms_pain,
        count(distinct case when concept_class = 'other' then concept end) as n_symptoms_other
    from symptoms
    group by patient_key
),

events as (
    select
        t.patient_key,
        t.event_kind,
        t.event_date,
        t.value,
        n.landmark_date
    from {{ ref('int_notes__timeline') }} as t
    inner join notes as n on t.note_key = n.note_key
),

ecog_ranked as (
    select
        patient_key,
        event_date,
        cast(value as int) as ecog,
        -- Latest documented score; two scores on the same day: the worse one.
        row_number() over (
            partition by patient_key
            order by event_date desc, cast(value as int) desc
        ) as recency_rank
    from events
    where event_kind = 'performance_status'
),

medication_changes as (
    select
        patient_key,
        count(*) as n_medication_changes_90d,
        sum(case when event_kind = 'medication_started' then 1 else 0 end)
            as n_medications_started_90d,
        sum(
            case when event_kind in ('medication_stopped', 'medication_held') then 1 else 0 end
        ) as n_medications_stopped_90d
    from events
    where
        event_kind in (
            'medication_started',
            'medication_stopped',
            'medication_held',
            'medication_dose_reduced',
            'medication_dose_increased',
            'medication_switched'
        )
        and event_date > {{ notes_add_days('landmark_date', -90) }}
    group by patient_key
),

final as (
    select
        s.patient_key,
        s.n_notes,
        s.last_note_date,
        cast({{ notes_days_between('s.last_note_date', 's.landmark_date') }} as int)
            as days_since_last_note,
        coalesce(c.n_affirmed_symptoms, 0) as n_affirmed_symptoms,
        coalesce(c.n_affirmed_symptom_mentions, 0) as n_affirmed_symptom_mentions,
        coalesce(c.n_symptoms_respiratory, 0) as n_symptoms_respiratory,
        coalesce(c.n_symptoms_constitutional, 0) as n_symptoms_constitutional,
        coalesce(c.n_symptoms_gastrointestinal, 0) as n_symptoms_gastrointestinal,
        coalesce(c.n_symptoms_neurological, 0) as n_symptoms_neurological,
        coalesce(c.n_symptoms_pain, 0) as n_symptoms_pain,
        coalesce(c.n_symptoms_other, 0) as n_symptoms_other,
        e.ecog as ecog_notes,
        e.event_date as ecog_notes_date,
        coalesce(m.n_medication_changes_90d, 0) as n_medication_changes_90d,
        coalesce(m.n_medications_started_90d, 0) as n_medications_started_90d,
        coalesce(m.n_medications_stopped_90d, 0) as n_medications_stopped_90d
    from note_summary as s
    left join symptom_counts as c on s.patient_key = c.patient_key
    left join ecog_ranked as e on s.patient_key = e.patient_key and e.recency_rank = 1
    left join medication_changes as m on s.patient_key = m.patient_key
)

select
    patient_key,
    cast(n_notes as int) as n_notes,
    last_note_date,
    days_since_last_note,
    cast(n_affirmed_symptoms as int) as n_affirmed_symptoms,
    cast(n_affirmed_symptom_mentions as int) as n_affirmed_symptom_mentions,
    cast(n_symptoms_respiratory as int) as n_symptoms_respiratory,
    cast(n_symptoms_constitutional as int) as n_symptoms_constitutional,
    cast(n_symptoms_gastrointestinal as int) as n_symptoms_gastrointestinal,
    cast(n_symptoms_neurological as int) as n_symptoms_neurological,
    cast(n_symptoms_pain as int) as n_symptoms_pain,
    cast(n_symptoms_other as int) as n_symptoms_other,
    ecog_notes,
    ecog_notes_date,
    cast(n_medication_changes_90d as int) as n_medication_changes_90d,
    cast(n_medications_started_90d as int) as n_medications_started_90d,
    cast(n_medications_stopped_90d as int) as n_medications_stopped_90d
from final
