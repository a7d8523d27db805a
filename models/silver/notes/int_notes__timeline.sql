{{ config(file_format=lakehouse_file_format()) }}

-- note_timeline: what the notes say happened, as dated events per patient. Only mentions that
-- assert an event for this patient count (not negated, uncertain, hypothetical or about a
-- relative); "plan to start X" is an intent, not a start. A concept mentioned several times in
-- one note is one event, traced to the first matching seed rule. The event date is the note's
-- date: the date the event was documented (dates inside the text are PHI and not parsed).
with entities as (
    select
        note_key,
        patient_key,
        note_type,
        note_date,
        concept,
        category,
        concept_class,
        value,
        historical,
        start_char,
        rule_id
    from {{ ref('int_notes__entities') }}
    where
        not negated
        and not uncertain
        and not hypothetical
        and not family
        and patient_key is not null
        and note_date is not null
),

events as (
    select
        note_key,
        patient_key,
        note_type,
        note_date,
        concept,
        concept_class,
        value,
        start_char,
        rule_id,
        case
            when
                category = 'medication'
                and value in (
                    'started', 'stopped', 'held', 'dose_reduced', 'dose_increased', 'switched'
                )
                then concat('medication_', value)
            when category = 'symptom' and not historical then 'symptom'
            -- "status post appendectomy in 2001" is not an event of the note's date.
            when category = 'procedure' and not historical then 'procedure'
            when category = 'response' and not historical then 'response'
            when category = 'ecog' then 'performance_status'
        end as event_kind
    from entities
),

ranked as (
    select
        note_key,
        patient_key,
        note_type,
        note_date,
        concept,
        concept_class,
        value,
        rule_id,
        event_kind,
        md5(concat_ws('|', note_key, event_kind, concept)) as event_key,
        row_number() over (
            partition by note_key, event_kind, concept
            order by start_char
        ) as mention_rank
    from events
    where event_kind is not null
)

select
    event_key,
    patient_key,
    note_date as event_date,
    event_kind,
    concept,
    concept_class,
    value,
    note_key,
    note_type,
    rule_id
from ranked
where mention_rank = 1
