{{ config(file_format=lakehouse_file_format()) }}

-- One row per specimen: the lab manifest says whose it is and what it is, the VCF headers say
-- that it was sequenced. Only the manifest links a specimen to an MRN; a specimen seen only in
-- a VCF (another client's sample on the flow cell, a lab that sent no manifest) keeps a null
-- patient_key rather than being dropped, so linkage gaps stay visible.
with bronze as (
    select
        sample_id,
        source_kind,
        patient_mrn,
        specimen_type,
        tumour_purity,
        collection_date,
        received_date,
        sequencing_run,
        run_date,
        panel,
        lab_name,
        _source_file,
        _ingested_at
    from {{ source('genomics', 'samples') }}
),

manifest_ranked as (
    -- A specimen listed by several manifests (a re-issued manifest, a re-run): the latest
    -- sequencing run wins, then the most recently landed file.
    select
        tumour_purity,
        collection_date,
        received_date,
        sequencing_run,
        run_date,
        panel,
        lab_name,
        _source_file,
        trim(sample_id) as sample_id,
        nullif(trim(patient_mrn), '') as patient_mrn,
        nullif(trim(specimen_type), '') as specimen_type,
        row_number() over (
            partition by trim(sample_id)
            order by run_date desc nulls last, _ingested_at desc, _source_file desc
        ) as manifest_rank,
        count(*) over (partition by trim(sample_id)) as n_manifest_rows
    from bronze
    where source_kind = 'manifest'
),

manifest as (
    select
        sample_id,
        patient_mrn,
        specimen_type,
        tumour_purity,
        collection_date,
        received_date,
        sequencing_run,
        run_date,
        panel,
        lab_name,
        n_manifest_rows,
        _source_file as manifest_source_file
    from manifest_ranked
    where manifest_rank = 1
),

vcf as (
    -- Genotype files of every format: VCF sample columns, BGEN samples, PLINK .fam rows
    -- (an Illumina sample sheet's rows, which land in bronze too, hold no genotypes).
    select
        trim(sample_id) as sample_id,
        count(*) as n_vcf_columns,
        min(sequencing_run) as vcf_sequencing_run,
        min(_source_file) as first_vcf_source_file
    from bronze
    where source_kind not in ('manifest', 'sample_sheet')
    group by trim(sample_id)
),

specimens as (
    select sample_id from manifest
    union
    select sample_id from vcf
),

joined as (
    select
        s.sample_id,
        m.patient_mrn,
        m.specimen_type,
        m.collection_date,
        m.received_date,
        m.run_date,
        m.panel,
        m.lab_name,
        m.manifest_source_file,
        v.first_vcf_source_file,
        coalesce(m.sequencing_run, v.vcf_sequencing_run) as sequencing_run,
        -- Purity is a fraction; a manifest giving percent (e.g. 35) is rescaled.
        case
            when m.tumour_purity between 0 and 1 then m.tumour_purity
            when m.tumour_purity > 1 and m.tumour_purity <= 100 then m.tumour_purity / 100
        end as tumour_purity,
        coalesce(m.n_manifest_rows, 0) as n_manifest_rows,
        coalesce(v.n_vcf_columns, 0) as n_vcf_columns,
        lower(coalesce(m.specimen_type, '')) as type_text
    from specimens as s
    left join manifest as m on s.sample_id = m.sample_id
    left join vcf as v on s.sample_id = v.sample_id
),

classified as (
    select
        sample_id,
        patient_mrn,
        specimen_type,
        collection_date,
        received_date,
        run_date,
        panel,
        lab_name,
        manifest_source_file,
        first_vcf_source_file,
        sequencing_run,
        tumour_purity,
        n_manifest_rows,
        n_vcf_columns,
        -- Order matters: "normal tissue" is normal, "plasma" is tumour-derived cfDNA. Plain
        -- "blood" is ambiguous: with a tumour fraction it is a liquid biopsy (what this lab
        -- sends), without one it is taken as the germline (normal) blood sample.
        case
            when type_text = '' then 'unknown'
            when
                type_text like '%normal%'
                or type_text like '%germline%'
                or type_text like '%buffy%'
                or type_text like '%saliva%'
                or type_text like '%pbmc%'
                then 'normal'
            when
                type_text like '%plasma%'
                or type_text like '%cfdna%'
                or type_text like '%ctdna%'
                or type_text like '%liquid%'
                then 'liquid_biopsy'
            when type_text like '%blood%' and tumour_purity > 0 then 'liquid_biopsy'
            when type_text like '%blood%' then 'normal'
            when
                type_text like '%tumo%'
                or type_text like '%ffpe%'
                or type_text like '%tissue%'
                or type_text like '%biopsy%'
                or type_text like '%resection%'
                then 'tumour_tissue'
            else 'unknown'
        end as specimen_class
    from joined
)

select
    sample_id,
    case
        when patient_mrn is not null then {{ pseudonymize('patient_mrn') }}
    end as patient_key,
    specimen_type,
    specimen_class,
    specimen_class in ('tumour_tissue', 'liquid_biopsy') as is_tumour,
    tumour_purity,
    collection_date,
    received_date,
    sequencing_run,
    run_date,
    panel,
    lab_name,
    n_manifest_rows > 0 as has_manifest,
    n_vcf_columns > 0 as is_sequenced,
    n_manifest_rows,
    n_vcf_columns,
    manifest_source_file,
    first_vcf_source_file
from classified
