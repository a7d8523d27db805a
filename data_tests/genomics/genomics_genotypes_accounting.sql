-- Every genotype of every bronze VCF line reaches stg_genomics__genotypes once per split
-- allele: rows per line = number of sample columns x max(1, number of ALT alleles).
with bronze as (
    select
        _source_file,
        _source_locator,
        coalesce({{ genomics_array_size('genotypes') }}, 0)
        * greatest(coalesce({{ genomics_array_size('alternatealleles') }}, 0), 1) as expected_rows
    from {{ source('genomics', 'variants') }}
),

silver as (
    select
        _source_file,
        _source_locator,
        count(*) as silver_rows
    from {{ ref('stg_genomics__genotypes') }}
    group by _source_file, _source_locator
)

select
    b._source_file,
    b._source_locator,
    b.expected_rows,
    coalesce(s.silver_rows, 0) as silver_rows
from bronze as b
left join silver as s
    on b._source_file = s._source_file and b._source_locator = s._source_locator
where b.expected_rows != coalesce(s.silver_rows, 0)
