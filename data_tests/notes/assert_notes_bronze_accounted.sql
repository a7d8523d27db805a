-- Accounting: every bronze note is in stg_notes__notes, and nothing else is. A bronze note is a
-- note id of the notes export, or a FHIR DocumentReference whose latest version has decoded
-- plain text and is not entered-in-error (the documented filter of brz_notes__notes, restated
-- here from the ehr source so that a note lost by that model is caught too).
-- stg_notes__notes applies no filter; re-landings of one note id collapse to the latest.
-- Any row returned is a note lost or invented between bronze and silver.
with document_versions as (
    select
        id,
        status,
        doc_status,
        text_status,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from {{ source('ehr', 'document_references') }}
    where id is not null
),

bronze as (
    select distinct {{ pseudonymize("concat('note:', note_id)") }} as note_key
    from {{ source('notes', 'notes') }}
    where note_id is not null
    union all
    select {{ pseudonymize("concat('note:', 'DocumentReference/', id)") }} as note_key
    from document_versions
    where
        version_rank = 1
        and text_status = 'decoded'
        and coalesce(status, '') != 'entered-in-error'
        and coalesce(doc_status, '') != 'entered-in-error'
),

silver as (
    select note_key
    from {{ ref('stg_notes__notes') }}
),

missing as (
    select
        b.note_key,
        'in bronze, not in silver' as problem
    from bronze as b
    left join silver as s on b.note_key = s.note_key
    where s.note_key is null
),

extra as (
    select
        s.note_key,
        'in silver, not in bronze' as problem
    from silver as s
    left join bronze as b on s.note_key = b.note_key
    where b.note_key is null
)

select
    note_key,
    problem
from missing
union all
select
    note_key,
    problem
from extra
