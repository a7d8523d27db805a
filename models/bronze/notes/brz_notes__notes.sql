{{ config(materialized='table', schema='bronze', file_format=lakehouse_file_format()) }}

-- Every landed clinical note, whichever way it arrived: the notes export (text files and their
-- manifest, python_ingest/notes.py) and the notes an EHR's FHIR API delivers as
-- DocumentReferences with inline plain text (python_ingest/ehr_documents.py). Restricted like
-- its sources: it carries the raw text, and only the notes models read it.
-- A FHIR note is its DocumentReference's latest version. It is left out when that version is
-- entered-in-error (status or docStatus) or has no decoded text (a PDF, a url elsewhere);
-- superseded references are kept, because EHRs (and Synthea) mark every earlier note of a
-- patient superseded and each still documents its own encounter. Its patient is linked by the
-- MRN of the FHIR Patient it references, like the export's manifest rows.
with exported as (
    select
        note_id,
        patient_mrn,
        note_type,
        loinc_document_code,
        author,
        note_datetime,
        char_count,
        text,
        'notes_export' as note_source,
        _ingest_batch_id,
        _ingested_at,
        _record_hash
    from {{ source('notes', 'notes') }}
    where note_id is not null
),

patient_versions as (
    select
        id,
        mrn,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from {{ source('ehr', 'patients') }}
    where id is not null
),

patients as (
    select
        id,
        nullif(trim(mrn), '') as mrn
    from patient_versions
    where version_rank = 1
),

document_versions as (
    select
        id,
        patient_ref,
        status,
        doc_status,
        type_display,
        type_text,
        loinc_code,
        author_ref,
        author_display,
        document_date,
        period_start,
        text,
        text_status,
        _ingest_batch_id,
        _ingested_at,
        _record_hash,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from {{ source('ehr', 'document_references') }}
    where id is not null
),

documents as (
    -- Columns in the order of `exported`: the two are stacked by position below.
    select
        concat('DocumentReference/', docs.id) as note_id,
        patients.mrn as patient_mrn,
        lower(coalesce(docs.type_text, docs.type_display)) as note_type,
        docs.loinc_code as loinc_document_code,
        coalesce(docs.author_display, docs.author_ref) as author,
        -- The care the note documents, else when the reference was made (UTC).
        cast(coalesce(docs.period_start, docs.document_date) as timestamp) as note_datetime,
        cast(length(docs.text) as bigint) as char_count,
        docs.text,
        'fhir_document_reference' as note_source,
        docs._ingest_batch_id,
        docs._ingested_at,
        docs._record_hash
    from document_versions as docs
    left join patients on docs.patient_ref = patients.id
    where
        docs.version_rank = 1
        and docs.text_status = 'decoded'
        and coalesce(docs.status, '') != 'entered-in-error'
        and coalesce(docs.doc_status, '') != 'entered-in-error'
)

select * from exported
union all
select * from documents
