{{ config(file_format=lakehouse_file_format()) }}

-- The cancer gene panel as served to analysts and to variant annotation: one row per gene
-- with its GRCh38 span and length. Published as a Delta table on every target.
with regions as (
    select
        gene_symbol,
        hgnc_id,
        chrom,
        start_pos,
        end_pos,
        strand
    from {{ ref('stg_reference__gene_panel_regions') }}
),

final as (
    select
        gene_symbol,
        hgnc_id,
        chrom,
        start_pos,
        end_pos,
        strand,
        end_pos - start_pos + 1 as gene_length_bp
    from regions
)

select
    gene_symbol,
    hgnc_id,
    chrom,
    start_pos,
    end_pos,
    strand,
    gene_length_bp
from final
