{{ config(file_format=lakehouse_file_format()) }}

{#-
    The training table: one row per patient of the EHR spine, every feature group left-joined
    under a `<group>__` prefix, an availability flag per modality and the outcome. A modality a
    patient does not have stays null with has_<modality> = false: missingness is information
    for the fusion models, never zero-filled here.

    The feature columns are read from each feature model's contract (its YAML columns), so a
    column added to a feature table reaches this model on the next build; this model's own
    contract (_multimodal__models.yml) then fails until the column is declared there too.
-#}
{%- set groups = [
    ('ehr', 'clinical', ref('features_clinical')),
    ('genomics', 'genomics', ref('features_genomics')),
    ('imaging', 'imaging', ref('features_imaging')),
    ('notes', 'notes', ref('features_notes')),
    ('wearables', 'wearables', ref('features_wearables')),
] -%}
{%- set shared_columns = ['patient_key', 'index_date', 'landmark_date'] -%}
{%- set feature_columns = [] -%}
{%- if execute -%}
    {%- for modality, group, relation in groups -%}
        {%- set node = graph.nodes['model.multimodal_lakehouse.' ~ relation.identifier] -%}
        {%- for column in node.columns if column not in shared_columns -%}
            {%- do feature_columns.append(group ~ '.' ~ column ~ ' as ' ~ group ~ '__' ~ column) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif %}

with spine as (
    select patient_key
    from {{ ref('stg_ehr__patients') }}
),

outcomes as (
    select
        patient_key,
        index_date,
        landmark_date,
        observation_end,
        label
    from {{ ref('outcomes') }}
),

cohort as (
    select
        patient_key,
        cancer_type,
        stage
    from {{ ref('oncology_cohort') }}
),

joined as (
    select
        spine.patient_key,
        cohort.cancer_type,
        cohort.stage,
        outcomes.index_date,
        outcomes.landmark_date,
        outcomes.observation_end,
        outcomes.label,
        {% for modality, group, relation in groups -%}
            {{ group }}.patient_key is not null as has_{{ modality }},
        {% endfor -%}
        {{ feature_columns | join(',\n        ') }}
    from spine
    left join outcomes on spine.patient_key = outcomes.patient_key
    left join cohort on spine.patient_key = cohort.patient_key
    {% for modality, group, relation in groups -%}
        left join {{ relation }} as {{ group }} on spine.patient_key = {{ group }}.patient_key
    {% endfor %}
)

{%- set counts = [] -%}
{%- set labels = [] -%}
{%- for modality, group, relation in groups -%}
    {%- do counts.append('cast(joined.has_' ~ modality ~ ' as int)') -%}
    {%- do labels.append("case when joined.has_" ~ modality ~ " then '" ~ modality ~ "' end") -%}
{%- endfor %}

select
    joined.*,
    {{ counts | join(' + ') }} as n_modalities,
    concat_ws('+', {{ labels | join(', ') }}) as modality_pattern
from joined
