{{ config(file_format=lakehouse_file_format()) }}

-- Variant sites as biallelic, parsimonious records: the first half of what bcftools norm
-- -m- (split) and vt normalize (trim) do. Multi-allelic lines become one row per ALT allele;
-- each ALT is then trimmed against REF without a reference genome. Left-alignment of indels
-- in repeats needs the reference sequence and is not done (see the model description).
with source as (
    select
        contigname,
        start,
        names,
        referenceallele,
        alternatealleles,
        qual,
        filters,
        splitfrommultiallelic,
        info_dp,
        info_af,
        info_gene,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash
    from {{ source('genomics', 'variants') }}
),

split as (
    -- allele_index is VCF's own ALT numbering (1 = first ALT), the number a GT call uses.
    select
        contigname,
        start,
        names,
        referenceallele,
        alternatealleles,
        qual,
        filters,
        splitfrommultiallelic,
        info_dp,
        info_af,
        info_gene,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        {{ genomics_explode_index('alternatealleles') }} as allele_index
    from source
),

alleles as (
    select
        allele_index,
        qual,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        -- The casts only pin the lower-case names (Spark would keep bronze's INFO_DP).
        cast(info_dp as int) as info_dp,
        cast(info_somatic as boolean) as info_somatic,
        -- Glow's start is 0-based; VCF POS (and everything downstream) is 1-based.
        start + 1 as original_pos,
        concat('chr', regexp_replace(trim(contigname), '^(chr|CHR|Chr)', '')) as chrom,
        upper(trim(referenceallele)) as original_ref,
        upper(trim({{ genomics_element_at('alternatealleles', 'allele_index') }})) as original_alt,
        {{ genomics_array_size('alternatealleles') }} as n_alt_alleles,
        -- Number=A INFO fields hold one value per ALT: the split row keeps its own element.
        {{ genomics_element_at('info_af', 'allele_index') }} as info_af,
        upper(trim(info_gene)) as info_gene,
        coalesce(splitfrommultiallelic, false) as bronze_split_flag,
        {{ genomics_array_join('filters', "';'") }} as filter_status,
        {{ genomics_array_join('names', "';'") }} as variant_ids
    from split
),

classified as (
    -- Only plain base strings can be trimmed; symbolic alleles (<DEL>, *, breakends) and
    -- the missing ALT of a reference-only site are kept as written.
    select
        allele_index,
        qual,
        info_dp,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        original_pos,
        chrom,
        original_ref,
        original_alt,
        n_alt_alleles,
        info_af,
        info_gene,
        bronze_split_flag,
        filter_status,
        variant_ids,
        coalesce(
            length(original_ref) > 0
            and length(original_alt) > 0
            and translate(original_ref, 'ACGTN', '') = ''
            and translate(original_alt, 'ACGTN', '') = '',
            false
        ) as is_sequence_allele
    from alleles
),

suffix_trimmed as (
    -- Trim the common trailing bases first, always keeping at least one base per allele.
    select
        allele_index,
        qual,
        info_dp,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        original_pos,
        chrom,
        original_ref,
        original_alt,
        n_alt_alleles,
        info_af,
        info_gene,
        bronze_split_flag,
        filter_status,
        variant_ids,
        is_sequence_allele,
        case
            when is_sequence_allele
                then {{ genomics_common_prefix_length(
                    'reverse(original_ref)',
                    'reverse(original_alt)',
                    'least(length(original_ref), length(original_alt)) - 1'
                ) }}
            else 0
        end as suffix_trim
    from classified
),

suffix_applied as (
    select
        allele_index,
        qual,
        info_dp,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        original_pos,
        chrom,
        original_ref,
        original_alt,
        n_alt_alleles,
        info_af,
        info_gene,
        bronze_split_flag,
        filter_status,
        variant_ids,
        is_sequence_allele,
        suffix_trim,
        substr(original_ref, 1, length(original_ref) - suffix_trim) as ref_s,
        substr(original_alt, 1, length(original_alt) - suffix_trim) as alt_s
    from suffix_trimmed
),

prefix_trimmed as (
    -- Then the common leading bases, again keeping one base; each one moves POS right.
    select
        allele_index,
        qual,
        info_dp,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        original_pos,
        chrom,
        original_ref,
        original_alt,
        n_alt_alleles,
        info_af,
        info_gene,
        bronze_split_flag,
        filter_status,
        variant_ids,
        is_sequence_allele,
        suffix_trim,
        ref_s,
        alt_s,
        case
            when is_sequence_allele
                then {{ genomics_common_prefix_length(
                    'ref_s', 'alt_s', 'least(length(ref_s), length(alt_s)) - 1'
                ) }}
            else 0
        end as prefix_trim
    from suffix_applied
),

normalised as (
    select
        allele_index,
        qual,
        info_dp,
        info_somatic,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        original_pos,
        chrom,
        original_ref,
        original_alt,
        n_alt_alleles,
        info_af,
        info_gene,
        bronze_split_flag,
        filter_status,
        variant_ids,
        is_sequence_allele,
        suffix_trim + prefix_trim as trimmed_bases,
        original_pos + prefix_trim as pos,
        case
            when is_sequence_allele then substr(ref_s, prefix_trim + 1) else original_ref
        end as ref,
        case
            when is_sequence_allele then substr(alt_s, prefix_trim + 1) else original_alt
        end as alt
    from prefix_trimmed
),

final as (
    select
        allele_index,
        qual,
        info_dp,
        info_af,
        info_gene,
        info_somatic,
        filter_status,
        variant_ids,
        chrom,
        pos,
        ref,
        alt,
        original_pos,
        original_ref,
        original_alt,
        n_alt_alleles,
        trimmed_bases,
        _source_file,
        _source_locator,
        _ingest_batch_id,
        _record_hash,
        md5(
            concat(_source_file, '|', _source_locator, '|', cast(allele_index as string))
        ) as split_variant_id,
        concat(chrom, ':', cast(pos as string), ':', ref, ':', coalesce(alt, '.')) as variant_key,
        bronze_split_flag or coalesce(n_alt_alleles, 0) > 1 as split_from_multiallelic,
        coalesce(filter_status = 'PASS', false) as is_pass,
        case
            when alt is null then 'no_alt'
            when not is_sequence_allele then 'symbolic'
            when length(ref) = 1 and length(alt) = 1 then 'snv'
            when length(ref) = length(alt) then 'mnv'
            when length(ref) = 1 and substr(alt, 1, 1) = ref then 'insertion'
            when length(alt) = 1 and substr(ref, 1, 1) = alt then 'deletion'
            else 'complex'
        end as variant_type
    from normalised
)

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
    original_pos,
    original_ref,
    original_alt,
    trimmed_bases,
    variant_ids,
    qual,
    filter_status,
    is_pass,
    info_dp,
    info_af,
    info_gene,
    info_somatic,
    _source_file,
    _source_locator,
    _ingest_batch_id,
    _record_hash
from final
