-- Record accounting of genomics_variants: every bronze VCF line must yield exactly
-- max(1, number of ALT alleles) rows in stg_genomics__variants (split, never dropped), and
-- silver must hold no line that bronze does not. Returns the lines that break this.
with bronze as (
    select
        _source_file,
        _source_locator,
        greatest(coalesce({{ genomics_array_size('alternatealleles') }}, 0), 1) as expected_rows
    from {{ source('genomics', 'variants') }}
),

silver as (
    select
        _source_file,
        _source_locator,
        count(*) as silver_rows
    from {{ ref('stg_genomics__variants') }}
    group by _source_file, _source_locator
)

select
    b.expected_rows,
    s.silver_rows,
    coalesce(b._source_file, s._source_file) as _source_file,
    coalesce(b._source_locator, s._source_locator) as _source_locator
from bronze as b
full outer join silver as s
    on b._source_file = s._source_file and b._source_locator = s._source_locator
where
    b._source_file is null
    or s._source_file is null
    or b.expected_rows != s.silver_rows
