{{ config(file_format=lakehouse_file_format()) }}

-- Cleans the raw panel seed into typed, normalised gene regions (one row per gene).
with source as (
    select
        gene_symbol,
        chrom,
        start_pos,
        end_pos,
        strand,
        hgnc_id
    from {{ ref('gene_panel_regions') }}
),

normalised as (
    select
        cast(start_pos as int) as start_pos,
        cast(end_pos as int) as end_pos,
        upper(trim(gene_symbol)) as gene_symbol,
        -- Accept "17", "chr17" or "CHR17"; keep the UCSC "chr" prefix used by GRCh38 VCFs.
        concat('chr', upper(regexp_replace(lower(trim(chrom)), '^chr', ''))) as chrom,
        case
            when trim(strand) in ('+', '1', '+1') then '+'
            when trim(strand) in ('-', '-1') then '-'
        end as strand,
        upper(trim(hgnc_id)) as hgnc_id
    from source
)

select
    gene_symbol,
    chrom,
    start_pos,
    end_pos,
    strand,
    hgnc_id
from normalised
