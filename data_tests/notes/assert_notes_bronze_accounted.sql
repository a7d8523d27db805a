-- Accounting: every bronze note (by note id) is in stg_notes__notes, and nothing else is.
-- stg_notes__notes applies no filter; re-landings of one note id collapse to the latest.
-- Any row returned is a note lost or invented between bronze and silver.
with bronze as (
    select distinct {{ pseudonymize("concat('note:', note_id)") }} as note_key
    from {{ source('notes', 'notes') }}
    where note_id is not null
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
