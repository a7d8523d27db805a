{{ config(file_format=lakehouse_file_format()) }}

-- The notes' timeline for the tumour board: one row per dated event (medication change,
-- affirmed symptom, procedure, response assessment, performance status) with the seed rule
-- that matched, so every line can be traced back to the lexicon entry behind it.
with timeline as (
    select
        event_key,
        patient_key,
        event_date,
        event_kind,
        concept,
        concept_class,
        value,
        note_key,
        note_type,
        rule_id
    from {{ ref('int_notes__timeline') }}
)

select
    event_key,
    patient_key,
    event_date,
    event_kind,
    concept,
    concept_class,
    value,
    note_key,
    note_type,
    rule_id
from timeline
