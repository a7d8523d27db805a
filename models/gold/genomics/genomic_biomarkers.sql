{{ config(file_format=lakehouse_file_format()) }}

-- The genomic biomarkers of each patient as a tumour board or a trial-matching query wants
-- them: one row per patient and biomarker (a hotspot variant, or TMB), reported from the most
-- recent tumour specimen that shows it, with how many specimens did. Not restricted to the
-- feature landmark: this is the patient's current genomic picture, not a model input.
with biomarkers as (
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
        is_actionable,
        zygosity,
        vaf,
        alt_depth,
        read_depth,
        is_somatic,
        n_somatic_variants,
        panel_size_mb,
        tmb_per_mb,
        _source_file,
        _source_locator
    from {{ ref('int_genomics__biomarkers') }}
),

ranked as (
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
        is_actionable,
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
        row_number() over (
            partition by patient_key, biomarker_name
            order by collection_date desc nulls last, vaf desc nulls last, sample_id asc
        ) as report_rank,
        count(*) over (partition by patient_key, biomarker_name) as n_samples_detected,
        min(collection_date) over (
            partition by patient_key, biomarker_name
        ) as first_detected_date
    from biomarkers
)

select
    patient_key,
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
    is_actionable,
    is_somatic,
    zygosity,
    vaf,
    alt_depth,
    read_depth,
    n_somatic_variants,
    panel_size_mb,
    tmb_per_mb,
    sample_id,
    specimen_class,
    tumour_purity,
    collection_date,
    first_detected_date,
    _source_file,
    _source_locator,
    cast(n_samples_detected as int) as n_samples_detected,
    md5(concat(patient_key, '|', biomarker_name)) as patient_biomarker_id
from ranked
where report_rank = 1
