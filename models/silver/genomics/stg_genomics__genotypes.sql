{{ config(file_format=lakehouse_file_format()) }}

-- One genotype per split variant row and VCF sample column, read relative to that row's ALT
-- allele: the split site stands for "this ALT versus everything else", so a 1/2 call is het
-- on the row of allele 1 and het on the row of allele 2, and a 0/2 call on the allele-1 row
-- is 'other_alt' (it carries an ALT, just not this one) rather than pretending to be 0/0.
with variants as (
    select
        split_variant_id,
        variant_key,
        allele_index,
        alt,
        _source_file,
        _source_locator
    from {{ ref('stg_genomics__variants') }}
),

bronze as (
    select
        genotypes,
        _source_file,
        _source_locator
    from {{ source('genomics', 'variants') }}
),

sample_columns as (
    -- sample_column is the 1-based position of the sample in the VCF header.
    select
        genotypes,
        _source_file,
        _source_locator,
        {{ genomics_explode_index('genotypes') }} as sample_column
    from bronze
),

genotype_structs as (
    select
        _source_file,
        _source_locator,
        sample_column,
        {{ genomics_element_at('genotypes', 'sample_column') }} as genotype
    from sample_columns
),

genotype_fields as (
    -- Sites-only lines have no genotype struct at all: nothing to emit for them here.
    -- gs.genotype.<field> is struct field access, which RF01 takes for a table reference.
    select
        gs._source_file,
        gs._source_locator,
        gs.sample_column,
        gs.genotype.calls,  -- noqa: RF01
        gs.genotype.phased,  -- noqa: RF01
        gs.genotype.sampleid as sample_id,  -- noqa: RF01
        gs.genotype.alleledepths as allele_depths,  -- noqa: RF01
        gs.genotype.depth as read_depth,  -- noqa: RF01
        gs.genotype.conditionalquality as genotype_quality,  -- noqa: RF01
        gs.genotype.ps as phase_set  -- noqa: RF01
    from genotype_structs as gs
    where gs.genotype is not null
),

per_allele as (
    select
        v.split_variant_id,
        v.variant_key,
        v.allele_index,
        v.alt,
        g.sample_id,
        g.sample_column,
        g.calls,
        g.phased,
        g.phase_set,
        g.read_depth,
        g.genotype_quality,
        g.allele_depths,
        g._source_file,
        g._source_locator,
        {{ genomics_array_size('g.calls') }} as ploidy,
        {{ genomics_count_where('g.calls', 'c', 'c >= 0') }} as n_called,
        {{ genomics_count_where('g.calls', 'c', 'c = v.allele_index') }} as allele_copies,
        {{ genomics_count_where('g.calls', 'c', 'c > 0 and c != v.allele_index') }}
            as other_alt_copies,
        {{ genomics_element_at('g.allele_depths', '1') }} as ref_depth,
        {{ genomics_element_at('g.allele_depths', 'v.allele_index + 1') }} as alt_depth,
        {{ genomics_array_sum('g.allele_depths') }} as allele_depth_total
    from genotype_fields as g
    inner join variants as v
        on
            g._source_file = v._source_file
            and g._source_locator = v._source_locator
),

final as (
    select
        split_variant_id,
        variant_key,
        allele_index,
        sample_id,
        sample_column,
        calls,
        ploidy,
        allele_copies,
        phased,
        phase_set,
        read_depth,
        genotype_quality,
        allele_depths,
        ref_depth,
        alt_depth,
        _source_file,
        _source_locator,
        md5(
            concat(split_variant_id, '|', cast(sample_column as string))
        ) as genotype_id,
        case
            when coalesce(ploidy, 0) = 0 or n_called = 0 then 'no_call'
            when n_called < ploidy then 'partial_call'
            when ploidy = 1 and allele_copies = 1 then 'hemizygous'
            when ploidy = 1 and other_alt_copies = 1 then 'other_alt'
            when ploidy = 1 then 'hemizygous_ref'
            when allele_copies = ploidy then 'hom_alt'
            when allele_copies > 0 then 'het'
            when other_alt_copies > 0 then 'other_alt'
            else 'hom_ref'
        end as zygosity,
        coalesce(allele_copies > 0 and alt is not null, false) as carries_allele,
        -- Fraction of the reads at the site (FORMAT/AD summed over all alleles) that support
        -- this ALT; null without AD or without reads.
        case
            when allele_depth_total > 0 and alt_depth is not null
                then cast(alt_depth as double) / allele_depth_total
        end as vaf
    from per_allele
)

select
    genotype_id,
    split_variant_id,
    variant_key,
    allele_index,
    sample_id,
    sample_column,
    calls,
    ploidy,
    allele_copies,
    zygosity,
    carries_allele,
    phased,
    phase_set,
    read_depth,
    genotype_quality,
    allele_depths,
    ref_depth,
    alt_depth,
    vaf,
    _source_file,
    _source_locator
from final
