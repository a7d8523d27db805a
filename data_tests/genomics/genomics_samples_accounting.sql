-- Record accounting of genomics_samples: every bronze row (a manifest row, or a sample of a
-- VCF, BGEN or PLINK file) is represented by its specimen in stg_genomics__samples, with the
-- right provenance flags;
-- a specimen without manifest row must have a null patient_key (never a guessed link).
with bronze as (
    select
        source_kind,
        _source_file,
        _source_locator,
        trim(sample_id) as sample_id
    from {{ source('genomics', 'samples') }}
),

silver as (
    select
        sample_id,
        patient_key,
        has_manifest,
        is_sequenced
    from {{ ref('stg_genomics__samples') }}
),

missing as (
    select
        b.sample_id,
        b._source_file,
        b._source_locator,
        'bronze row without its specimen in silver' as problem
    from bronze as b
    left join silver as s
        on
            b.sample_id = s.sample_id
            and (
                (b.source_kind = 'manifest' and s.has_manifest)
                or (b.source_kind != 'manifest' and s.is_sequenced)
            )
    where s.sample_id is null
),

unlinked_with_key as (
    select
        sample_id,
        cast(null as string) as _source_file,
        cast(null as string) as _source_locator,
        'specimen without manifest row has a patient_key' as problem
    from silver
    where not has_manifest and patient_key is not null
)

select
    sample_id,
    _source_file,
    _source_locator,
    problem
from missing
union all
select
    sample_id,
    _source_file,
    _source_locator,
    problem
from unlinked_with_key
