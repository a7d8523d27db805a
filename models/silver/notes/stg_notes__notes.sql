{{ config(file_format=lakehouse_file_format()) }}

-- Note metadata without the text: one row per landed note (the latest landing of a note id),
-- from the notes export or from a FHIR DocumentReference (brz_notes__notes says which are notes).
-- Identifiers are replaced by keyed pseudonyms: the note id (an EHR identifier), the patient's
-- MRN and the signing clinician (staff names are personal data too).
with notes as (
    select
        note_id,
        patient_mrn,
        note_type,
        loinc_document_code,
        author,
        note_datetime,
        char_count,
        text,
        note_source,
        _ingest_batch_id,
        _ingested_at,
        row_number() over (
            partition by note_id
            order by _ingested_at desc, _record_hash desc
        ) as landing_rank
    from {{ ref('brz_notes__notes') }}
    where note_id is not null
),

latest as (
    select
        note_id,
        patient_mrn,
        note_type,
        loinc_document_code,
        author,
        note_datetime,
        char_count,
        text,
        note_source,
        _ingest_batch_id,
        _ingested_at
    from notes
    where landing_rank = 1
)

select
    {{ pseudonymize("concat('note:', note_id)") }} as note_key,
    {{ pseudonymize('patient_mrn') }} as patient_key,
    lower(trim(note_type)) as note_type,
    trim(loinc_document_code) as loinc_document_code,
    -- Signed date-times are wall-clock times of the source system; the date is what counts.
    note_datetime,
    cast(note_datetime as date) as note_date,
    cast(char_count as bigint) as char_count,
    case
        when author is not null then {{ pseudonymize("concat('author:', author)") }}
    end as author_key,
    coalesce(length(trim(text)), 0) = 0 as is_empty,
    note_source,
    _ingest_batch_id as ingest_batch_id,
    _ingested_at as ingested_at
from latest
