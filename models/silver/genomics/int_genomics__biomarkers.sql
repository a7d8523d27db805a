{{ config(file_format=lakehouse_file_format()) }}

-- Per patient and tumour specimen, the two kinds of genomic biomarker a tumour board reads:
-- (1) known hotspot variants from the actionable_variants seed called in the tumour, with
-- their evidence level and matched therapy, and (2) a panel tumour mutational burden (TMB).
-- Only specimens linked to a patient (manifest row) count; whose tumour an unlinked specimen
-- is, nobody can say.
with samples as (
    select
        sample_id,
        patient_key,
        specimen_class,
        is_tumour,
        is_sequenced,
        tumour_purity,
        collection_date,
        first_vcf_source_file
    from {{ ref('stg_genomics__samples') }}
    where patient_key is not null
),

variants as (
    select
        split_variant_id,
        variant_key,
        chrom,
        pos,
        ref,
        alt,
        is_pass,
        info_somatic,
        _source_file,
        _source_locator
    from {{ ref('int_genomics__annotated_variants') }}
),

called as (
    -- A called allele: het, hom_alt or hemizygous for this ALT (partial and no-calls are not
    -- evidence of a variant).
    select
        g.split_variant_id,
        g.sample_id,
        g.zygosity,
        g.vaf,
        g.alt_depth,
        g.read_depth
    from {{ ref('stg_genomics__genotypes') }} as g
    where g.zygosity in ('het', 'hom_alt', 'hemizygous')
),

calls as (
    select
        c.sample_id,
        c.zygosity,
        c.vaf,
        c.alt_depth,
        c.read_depth,
        s.patient_key,
        s.specimen_class,
        s.is_tumour,
        s.tumour_purity,
        s.collection_date,
        v.variant_key,
        v.chrom,
        v.pos,
        v.ref,
        v.alt,
        v.is_pass,
        v.info_somatic,
        v._source_file,
        v._source_locator
    from called as c
    inner join samples as s on c.sample_id = s.sample_id
    inner join variants as v on c.split_variant_id = v.split_variant_id
),

normal_alleles as (
    -- Alleles seen in a patient's matched normal (germline) specimen.
    select distinct
        patient_key,
        variant_key
    from calls
    where specimen_class = 'normal'
),

patients_with_normal as (
    select distinct patient_key
    from samples
    where specimen_class = 'normal' and is_sequenced
),

tumour_calls as (
    -- Somatic: absent from the matched normal when there is one; otherwise the caller's
    -- INFO/SOMATIC flag decides (tumour-only calling, as this lab's pipeline does). A call
    -- the caller did not flag either way counts as somatic only with a clean matched normal.
    select
        t.sample_id,
        t.zygosity,
        t.vaf,
        t.alt_depth,
        t.read_depth,
        t.patient_key,
        t.specimen_class,
        t.tumour_purity,
        t.collection_date,
        t.variant_key,
        t.chrom,
        t.pos,
        t.ref,
        t.alt,
        t.is_pass,
        t._source_file,
        t._source_locator,
        case
            when na.variant_key is not null then false
            when t.info_somatic is not null then t.info_somatic
            else pn.patient_key is not null
        end as is_somatic
    from calls as t
    left join normal_alleles as na
        on t.patient_key = na.patient_key and t.variant_key = na.variant_key
    left join patients_with_normal as pn on t.patient_key = pn.patient_key
    where t.is_tumour
),

knowledge as (
    select
        cast(pos as bigint) as pos,
        upper(trim(gene)) as gene_symbol,
        trim(protein_change) as protein_change,
        trim(hgvs_c) as hgvs_c,
        concat('chr', regexp_replace(trim(chrom), '^(chr|CHR|Chr)', '')) as chrom,
        upper(trim(ref)) as ref,
        upper(trim(alt)) as alt,
        lower(trim(biomarker_role)) as biomarker_role,
        upper(trim(evidence_level)) as evidence_level,
        -- An empty seed cell is null on DuckDB but the text 'None' on dbt-spark's seed load.
        case
            when trim(matched_therapy) not in ('', 'None') then trim(matched_therapy)
        end as matched_therapy,
        case
            when trim(matched_therapy_rxnorm) not in ('', 'None') then trim(matched_therapy_rxnorm)
        end as matched_therapy_rxnorm,
        case
            when trim(cancer_types) not in ('', 'None') then trim(cancer_types)
        end as cancer_types
    from {{ ref('actionable_variants') }}
),

hotspots as (
    -- Reported calls only: PASS. A filtered call at a hotspot stays visible in
    -- stg_genomics__genotypes but is not a biomarker.
    select
        t.patient_key,
        t.sample_id,
        t.specimen_class,
        t.collection_date,
        t.tumour_purity,
        'hotspot_variant' as biomarker_kind,
        concat(k.gene_symbol, ' ', k.protein_change) as biomarker_name,
        k.gene_symbol,
        k.protein_change,
        k.hgvs_c,
        t.variant_key,
        k.biomarker_role,
        k.evidence_level,
        k.matched_therapy,
        k.matched_therapy_rxnorm,
        k.cancer_types,
        t.zygosity,
        t.vaf,
        t.alt_depth,
        t.read_depth,
        t.is_somatic,
        cast(null as bigint) as n_somatic_variants,
        cast(null as double) as panel_size_mb,
        cast(null as double) as tmb_per_mb,
        t._source_file,
        t._source_locator
    from tumour_calls as t
    inner join knowledge as k
        on
            t.chrom = k.chrom
            and t.pos = k.pos
            and t.ref = k.ref
            and t.alt = k.alt
    where t.is_pass
),

panel as (
    -- TMB denominator: the panel territory, i.e. the summed gene spans of the panel seed.
    select cast(sum(end_pos - start_pos + 1) as double) / 1000000 as panel_size_mb
    from {{ ref('stg_reference__gene_panel_regions') }}
),

somatic_counts as (
    select
        sample_id,
        count(distinct variant_key) as n_somatic_variants
    from tumour_calls
    where is_pass and is_somatic
    group by sample_id
),

tmb as (
    -- Every sequenced tumour specimen gets a TMB, zero included.
    select
        s.patient_key,
        s.sample_id,
        s.specimen_class,
        s.collection_date,
        s.tumour_purity,
        'tmb' as biomarker_kind,
        'TMB' as biomarker_name,
        cast(null as string) as gene_symbol,
        cast(null as string) as protein_change,
        cast(null as string) as hgvs_c,
        cast(null as string) as variant_key,
        'tmb' as biomarker_role,
        cast(null as string) as evidence_level,
        cast(null as string) as matched_therapy,
        cast(null as string) as matched_therapy_rxnorm,
        cast(null as string) as cancer_types,
        cast(null as string) as zygosity,
        cast(null as double) as vaf,
        cast(null as int) as alt_depth,
        cast(null as int) as read_depth,
        cast(null as boolean) as is_somatic,
        coalesce(c.n_somatic_variants, 0) as n_somatic_variants,
        p.panel_size_mb,
        coalesce(c.n_somatic_variants, 0) / p.panel_size_mb as tmb_per_mb,
        s.first_vcf_source_file as _source_file,
        cast(null as string) as _source_locator
    from samples as s
    cross join panel as p
    left join somatic_counts as c on s.sample_id = c.sample_id
    where s.is_tumour and s.is_sequenced
),

unioned as (
    select * from hotspots
    union all
    select * from tmb
)

select
    patient_key,
    sample_id,
    specimen_class,
    collection_date,
    tumour_purity,
    biomarker_kind,
    biomarker_name,
    gene_symbol,
    protein_change,
    hgvs_c,
    variant_key,
    biomarker_role,
    evidence_level,
    matched_therapy,
    matched_therapy_rxnorm,
    cancer_types,
    zygosity,
    vaf,
    alt_depth,
    read_depth,
    is_somatic,
    n_somatic_variants,
    panel_size_mb,
    tmb_per_mb,
    _source_file,
    _source_locator,
    md5(concat(patient_key, '|', sample_id, '|', biomarker_name)) as biomarker_id,
    matched_therapy is not null and evidence_level in ('IA', 'IB') as is_actionable
from unioned
