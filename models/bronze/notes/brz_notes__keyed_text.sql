{{ config(materialized='table', schema='bronze', file_format=lakehouse_file_format()) }}

-- The note text with its pseudonymous keys, for the NLP model (int_notes__entities) only.
-- It stays in the restricted bronze schema: the text is never copied to silver. The NLP reads
-- it and writes back the matched concept spans keyed by note_key/patient_key, so no raw
-- identifier (note id, MRN) and no free text reach silver. A table, not a view: Spark would
-- store a view's SQL after substituting the pseudonymisation key into it.
with notes as (
    select
        note_id,
        patient_mrn,
        note_type,
        note_datetime,
        text,
        _ingested_at,
        -- A note re-landed from a corrected export replaces the earlier copy.
        row_number() over (
            partition by note_id
            order by _ingested_at desc, _record_hash desc
        ) as landing_rank
    from {{ ref('brz_notes__notes') }}
    where note_id is not null
)

select
    -- Note ids are identifiers of the source EHR: keyed like MRNs, in their own domain.
    {{ pseudonymize("concat('note:', note_id)") }} as note_key,
    {{ pseudonymize('patient_mrn') }} as patient_key,
    note_type,
    cast(note_datetime as date) as note_date,
    text
from notes
where landing_rank = 1
