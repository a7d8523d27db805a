{{ config(file_format=lakehouse_file_format()) }}

-- Observations (labs, vital signs, ECOG, stage group, mCODE disease status) keyed by
-- patient_key, with quantities normalised to one canonical unit per analyte through the
-- lab_units seed: canonical = value * factor + unit_offset, matched on (LOINC, UCUM code or
-- unit text). A unit the seed does not know leaves value_canonical null (never guessed).
-- Filters: superseded versions of a resource id (latest meta.lastUpdated kept), status
-- entered-in-error or cancelled (no result exists), rows whose Patient is not in the export.
with source as (
    select
        id,
        patient_ref,
        encounter_ref,
        status,
        category,
        code,
        code_display,
        code_text,
        loinc_code,
        loinc_display,
        value_type,
        value_quantity,
        value_comparator,
        value_unit,
        value_unit_code,
        value_code,
        value_code_system,
        value_code_display,
        value_string,
        value_integer,
        value_boolean,
        interpretation,
        reference_low,
        reference_high,
        effective_at,
        effective_date,
        issued,
        focus_ref,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'observations') }}
),

versions as (
    select
        id,
        patient_ref,
        encounter_ref,
        status,
        category,
        code,
        code_display,
        code_text,
        loinc_code,
        loinc_display,
        value_type,
        value_quantity,
        value_comparator,
        value_unit,
        value_unit_code,
        value_code,
        value_code_system,
        value_code_display,
        value_string,
        value_integer,
        value_boolean,
        interpretation,
        reference_low,
        reference_high,
        effective_at,
        effective_date,
        issued,
        focus_ref,
        last_updated,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from source
    where id is not null
),

identifiers as (
    select
        fhir_patient_id,
        patient_key
    from {{ ref('stg_ehr__patient_identifiers') }}
),

encounters as (
    select encounter_id
    from {{ ref('stg_ehr__encounters') }}
),

lab_units as (
    select
        loinc,
        unit,
        canonical_loinc,
        analyte,
        canonical_unit,
        factor,
        unit_offset
    from {{ ref('lab_units') }}
),

current_rows as (
    select
        identifiers.patient_key,
        versions.id as observation_id,
        {{ ehr_reference_id('versions.encounter_ref') }} as encounter_id,
        versions.status,
        versions.category,
        coalesce(versions.loinc_code, versions.code) as loinc_code,
        coalesce(versions.loinc_display, versions.code_display, versions.code_text)
            as code_display,
        versions.value_type,
        versions.value_quantity,
        versions.value_comparator,
        -- UCUM code when the sender gave one, else the printed unit.
        coalesce(nullif(trim(versions.value_unit_code), ''), trim(versions.value_unit))
            as value_unit,
        versions.value_code,
        versions.value_code_system,
        versions.value_code_display,
        versions.value_string,
        versions.value_integer,
        versions.value_boolean,
        versions.interpretation,
        versions.reference_low,
        versions.reference_high,
        coalesce(versions.effective_at, versions.issued) as effective_at,
        coalesce(
            versions.effective_date, cast(coalesce(versions.effective_at, versions.issued) as date)
        ) as effective_date,
        versions.issued,
        {{ ehr_reference_id('versions.focus_ref') }} as focus_id,
        versions.last_updated
    from versions
    inner join identifiers
        on {{ ehr_reference_id('versions.patient_ref') }} = identifiers.fhir_patient_id
    where
        versions.version_rank = 1
        and coalesce(versions.status, '') not in ('entered-in-error', 'cancelled')
)

-- Identifiers first, then the clinical content, in source order.
select  -- noqa: ST06
    current_rows.patient_key,
    current_rows.observation_id,
    current_rows.encounter_id,
    -- null when the resource names no visit; false when the named visit is missing.
    case
        when current_rows.encounter_id is not null then encounters.encounter_id is not null
    end as encounter_ref_resolved,
    current_rows.status,
    current_rows.category,
    current_rows.loinc_code,
    current_rows.code_display,
    current_rows.value_type,
    current_rows.value_quantity,
    current_rows.value_comparator,
    current_rows.value_unit,
    lab_units.canonical_loinc,
    lab_units.analyte,
    -- Four decimals: well below assay precision, and stable across engines.
    round(current_rows.value_quantity * lab_units.factor + lab_units.unit_offset, 4)
        as value_canonical,
    lab_units.canonical_unit,
    current_rows.value_code,
    current_rows.value_code_system,
    current_rows.value_code_display,
    current_rows.value_string,
    current_rows.value_integer,
    current_rows.value_boolean,
    current_rows.interpretation,
    current_rows.reference_low,
    current_rows.reference_high,
    cast(current_rows.effective_at as timestamp) as effective_at,
    current_rows.effective_date,
    cast(current_rows.issued as timestamp) as issued_at,
    current_rows.focus_id,
    cast(current_rows.last_updated as timestamp) as last_updated
from current_rows
left join encounters
    on current_rows.encounter_id = encounters.encounter_id
left join lab_units
    on
        current_rows.loinc_code = lab_units.loinc
        and current_rows.value_unit = lab_units.unit
