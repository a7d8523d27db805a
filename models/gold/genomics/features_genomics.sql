{{ config(file_format=lakehouse_file_format()) }}

-- Genomic features per patient for the outcome models, from the tumour specimens collected by
-- the landmark (index date + feature_landmark_days). Patients without such a specimen get no
-- row: patient_multimodal left-joins this table, and "not sequenced" must stay distinguishable
-- from "sequenced, nothing found".
with index_dates as (
    select
        patient_key,
        landmark_date
    from {{ ref('int_ehr__index_dates') }}
),

eligible_samples as (
    -- The tumour as it was by the landmark: a specimen collected later (e.g. at progression)
    -- could carry resistance mutations selected by the outcome being predicted.
    select
        s.patient_key,
        s.sample_id,
        s.tumour_purity
    from {{ ref('stg_genomics__samples') }} as s
    inner join index_dates as i on s.patient_key = i.patient_key
    where
        s.is_tumour
        and s.is_sequenced
        and s.collection_date <= i.landmark_date
),

biomarkers as (
    select
        b.patient_key,
        b.sample_id,
        b.biomarker_kind,
        b.gene_symbol,
        b.protein_change,
        b.biomarker_name,
        b.biomarker_role,
        b.evidence_level,
        b.is_actionable,
        b.vaf,
        b.n_somatic_variants,
        b.tmb_per_mb
    from {{ ref('int_genomics__biomarkers') }} as b
    inner join eligible_samples as e on b.sample_id = e.sample_id
),

drivers_ranked as (
    -- The reported driver: best evidence tier, then the highest VAF (most clonal).
    select
        patient_key,
        gene_symbol,
        protein_change,
        row_number() over (
            partition by patient_key
            order by evidence_level asc, vaf desc, gene_symbol asc, protein_change asc
        ) as driver_rank
    from biomarkers
    where biomarker_kind = 'hotspot_variant' and biomarker_role = 'driver'
),

variant_flags as (
    select
        patient_key,
        max(case when biomarker_role = 'driver' then 1 else 0 end) as has_driver,
        max(case when gene_symbol = 'EGFR' then 1 else 0 end) as egfr_mutated,
        max(case when gene_symbol = 'KRAS' then 1 else 0 end) as kras_mutated,
        max(case when gene_symbol = 'NRAS' then 1 else 0 end) as nras_mutated,
        max(case when gene_symbol = 'BRAF' then 1 else 0 end) as braf_mutated,
        max(case when gene_symbol = 'PIK3CA' then 1 else 0 end) as pik3ca_mutated,
        max(case when gene_symbol = 'IDH1' then 1 else 0 end) as idh1_mutated,
        max(case when gene_symbol = 'TP53' then 1 else 0 end) as tp53_mutated,
        count(distinct case when is_actionable then biomarker_name end) as n_actionable
    from biomarkers
    where biomarker_kind = 'hotspot_variant'
    group by patient_key
),

tmb as (
    -- Several tumour specimens: the highest burden is reported (the most informative one,
    -- typically the tissue sample with the highest purity).
    select
        patient_key,
        max(tmb_per_mb) as tmb_per_mb,
        max(n_somatic_variants) as n_somatic_variants
    from biomarkers
    where biomarker_kind = 'tmb'
    group by patient_key
),

per_patient as (
    select
        patient_key,
        count(*) as n_samples,
        avg(tumour_purity) as mean_purity
    from eligible_samples
    group by patient_key
)

select
    p.patient_key,
    p.mean_purity,
    d.gene_symbol as driver_gene,
    d.protein_change as driver_protein_change,
    t.tmb_per_mb,
    cast(p.n_samples as int) as n_samples,
    cast(coalesce(f.n_actionable, 0) as int) as n_actionable,
    cast(t.n_somatic_variants as int) as n_somatic_variants,
    coalesce(f.has_driver = 1, false) as has_driver,
    coalesce(f.egfr_mutated = 1, false) as egfr_mutated,
    coalesce(f.kras_mutated = 1, false) as kras_mutated,
    coalesce(f.nras_mutated = 1, false) as nras_mutated,
    coalesce(f.braf_mutated = 1, false) as braf_mutated,
    coalesce(f.pik3ca_mutated = 1, false) as pik3ca_mutated,
    coalesce(f.idh1_mutated = 1, false) as idh1_mutated,
    coalesce(f.tp53_mutated = 1, false) as tp53_mutated
from per_patient as p
left join variant_flags as f on p.patient_key = f.patient_key
left join drivers_ranked as d on p.patient_key = d.patient_key and d.driver_rank = 1
left join tmb as t on p.patient_key = t.patient_key
