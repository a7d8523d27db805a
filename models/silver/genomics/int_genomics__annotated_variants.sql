{{ config(file_format=lakehouse_file_format()) }}

-- Each split variant gets its panel gene from GRCh38 coordinates (the gene span that contains
-- POS), independently of the gene name the lab's pipeline wrote into INFO/GENE: the two are
-- kept side by side so a disagreement (an outdated annotation, a liftover problem) shows.
with variants as (
    select
        split_variant_id,
        variant_key,
        chrom,
        pos,
        ref,
        alt,
        variant_type,
        allele_index,
        n_alt_alleles,
        split_from_multiallelic,
        qual,
        filter_status,
        is_pass,
        info_af,
        info_gene,
        info_somatic,
        _source_file,
        _source_locator
    from {{ ref('stg_genomics__variants') }}
),

genes as (
    select
        gene_symbol,
        chrom,
        start_pos,
        end_pos
    from {{ ref('stg_reference__gene_panel_regions') }}
),

gene_hits as (
    -- Genes can overlap (none of this panel's do); the shortest containing span wins so the
    -- grain stays one row per split variant.
    select
        v.split_variant_id,
        g.gene_symbol,
        row_number() over (
            partition by v.split_variant_id
            order by g.end_pos - g.start_pos, g.gene_symbol
        ) as gene_rank,
        count(*) over (partition by v.split_variant_id) as n_genes
    from variants as v
    inner join genes as g
        on
            v.chrom = g.chrom
            and v.pos between g.start_pos and g.end_pos
),

best_gene as (
    select
        split_variant_id,
        gene_symbol,
        n_genes
    from gene_hits
    where gene_rank = 1
)

select
    v.split_variant_id,
    v.variant_key,
    v.chrom,
    v.pos,
    v.ref,
    v.alt,
    v.variant_type,
    v.allele_index,
    v.n_alt_alleles,
    v.split_from_multiallelic,
    v.qual,
    v.filter_status,
    v.is_pass,
    v.info_af,
    v.info_somatic,
    b.gene_symbol,
    v.info_gene,
    v._source_file,
    v._source_locator,
    b.gene_symbol is not null as in_panel,
    coalesce(b.n_genes, 0) as n_overlapping_genes,
    coalesce(b.gene_symbol = v.info_gene, false) as gene_matches_info
from variants as v
left join best_gene as b on v.split_variant_id = b.split_variant_id
