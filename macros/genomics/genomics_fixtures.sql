{#-
    Fixture builders for the genomics dbt unit tests (models/silver/genomics/_genomics__models.yml).
    A unit test of a model that reads Glow's VCF schema needs arrays and arrays of structs as
    input, and SQL literals for those differ between engines (DuckDB [..] / struct_pack, Spark
    array() / named_struct). The tests call these macros from `format: sql` fixtures, so the
    same test runs on every target.
-#}

{#- genomics_fixture_array(items, element_type): an array literal; items are SQL literals. -#}
{% macro genomics_fixture_array(items, element_type) -%}
    {{ return(adapter.dispatch('genomics_fixture_array', 'multimodal_lakehouse')(
        items, element_type)) }}
{%- endmacro %}

{% macro default__genomics_fixture_array(items, element_type) -%}
    {%- if items is none -%}
        cast(null as array<{{ element_type }}>)
    {%- else -%}
        cast(array({{ items | join(', ') }}) as array<{{ element_type }}>)
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__genomics_fixture_array(items, element_type) -%}
    {%- if items is none -%}
        cast(null as {{ element_type }}[])
    {%- else -%}
        cast([{{ items | join(', ') }}] as {{ element_type }}[])
    {%- endif -%}
{%- endmacro %}

{#- genomics_fixture_list(items): an array of already-typed SQL expressions (e.g. structs). -#}
{% macro genomics_fixture_list(items) -%}
    {{ return(adapter.dispatch('genomics_fixture_list', 'multimodal_lakehouse')(items)) }}
{%- endmacro %}

{% macro default__genomics_fixture_list(items) -%}
    array({{ items | join(', ') }})
{%- endmacro %}

{% macro duckdb__genomics_fixture_list(items) -%}
    [{{ items | join(', ') }}]
{%- endmacro %}

{#-
    genomics_fixture_genotype(sample_id, calls, allele_depths, depth, phased=false): one
    genotype struct of Glow's schema; calls and allele_depths are lists of integers (-1 for a
    missing allele), allele_depths may be none.
-#}
{% macro genomics_fixture_genotype(sample_id, calls, allele_depths, depth, phased=false) -%}
    {{ return(adapter.dispatch('genomics_fixture_genotype', 'multimodal_lakehouse')(
        sample_id, calls, allele_depths, depth, phased)) }}
{%- endmacro %}

{% macro default__genomics_fixture_genotype(sample_id, calls, allele_depths, depth, phased) -%}
    named_struct(
        'sampleId', '{{ sample_id }}',
        'phased', {{ 'true' if phased else 'false' }},
        'calls', {{ genomics_fixture_array(calls, 'int') }},
        'alleleDepths', {{ genomics_fixture_array(allele_depths, 'int') }},
        'depth', cast({{ depth if depth is not none else 'null' }} as int),
        'conditionalQuality', cast(99 as int),
        'PS', cast(null as int)
    )
{%- endmacro %}

{% macro duckdb__genomics_fixture_genotype(sample_id, calls, allele_depths, depth, phased) -%}
    struct_pack(
        sampleId := '{{ sample_id }}',
        phased := {{ 'true' if phased else 'false' }},
        calls := {{ genomics_fixture_array(calls, 'integer') }},
        alleleDepths := {{ genomics_fixture_array(allele_depths, 'integer') }},
        depth := cast({{ depth if depth is not none else 'null' }} as integer),
        conditionalQuality := cast(99 as integer),
        PS := cast(null as integer)
    )
{%- endmacro %}

{#-
    genomics_fixture_variant(locator, chrom, pos, ref, alts, af, genotypes, filters, somatic):
    one select of a complete genomics_variants row (all columns, bronze names), VCF-style:
    pos is the 1-based VCF POS (start = pos - 1, as Glow stores it), alts and af are lists
    (af may be none), genotypes a non-empty list of [sample_id, calls, allele_depths, depth]
    (see genomics_fixture_genotype; dbt renders fixtures with only the macros called at the
    top level, so the fixture passes plain data and this macro builds the structs). Rows are combined with
    `union all` in the fixture.
-#}
{% macro genomics_fixture_variant(
    locator, chrom, pos, ref, alts, af, genotypes, filters=['PASS'], somatic=true,
    source_file='/raw/genomics/vcf/RUN-TEST.vcf.gz'
) -%}
    {%- set quoted_alts = [] -%}
    {%- for alt in alts -%}{%- do quoted_alts.append("'" ~ alt ~ "'") -%}{%- endfor -%}
    {%- set quoted_filters = [] -%}
    {%- for f in filters -%}{%- do quoted_filters.append("'" ~ f ~ "'") -%}{%- endfor -%}
    {%- set structs = [] -%}
    {%- for g in genotypes -%}
        {%- do structs.append(genomics_fixture_genotype(g[0], g[1], g[2], g[3])) -%}
    {%- endfor %}
    select
        '{{ chrom }}' as contigName,
        cast({{ pos - 1 }} as bigint) as start,
        cast({{ pos - 1 + ref | length }} as bigint) as {{ adapter.quote('end') }},
        {{ genomics_fixture_array(none, 'string') }} as names,
        '{{ ref }}' as referenceAllele,
        {{ genomics_fixture_array(quoted_alts, 'string') }} as alternateAlleles,
        cast(50.0 as double) as qual,
        {{ genomics_fixture_array(quoted_filters, 'string') }} as filters,
        false as splitFromMultiAllelic,
        cast(100 as int) as INFO_DP,
        {{ genomics_fixture_array(af, 'double') }} as INFO_AF,
        cast(null as string) as INFO_GENE,
        {{ 'true' if somatic else 'false' }} as INFO_SOMATIC,
        {{ genomics_fixture_list(structs) }} as genotypes,
        '{{ source_file }}' as _source_file,
        '{{ locator }}' as _source_locator,
        'batch-test' as _ingest_batch_id,
        current_timestamp as _ingested_at,
        'hash-{{ locator }}' as _record_hash
{%- endmacro %}
