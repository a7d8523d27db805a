{{ config(file_format=lakehouse_file_format()) }}

-- Imaging studies as the EHR knows them (FHIR ImagingStudy, which has no typed bronze table:
-- read from the raw JSON in ehr_resources), keyed by patient_key. The pseudonymised Study
-- Instance UID links to the DICOM headers, the accession number to the imaging Procedure
-- and the radiology report. Filters: superseded versions of a resource id (latest meta.lastUpdated
-- kept), status entered-in-error or cancelled, rows whose Patient is not in the export.
{%- set max_identifiers = 4 %}
with source as (
    select
        id,
        patient_ref,
        raw_json,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'resources') }}
    where resource_type = 'ImagingStudy'
),

versions as (
    select
        id,
        patient_ref,
        raw_json,
        last_updated,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from source
    where id is not null
),

-- ImagingStudy.identifier is a list; JSONPath filters are not portable, so the first few
-- entries are read by position and picked by system (DICOM UID) or type (ACSN).
parsed as (
    select
        id,
        patient_ref,
        last_updated,
        {{ ehr_json_string('raw_json', '$.status') }} as status,
        {%- for i in range(max_identifiers) %}
            {{ ehr_json_string('raw_json', '$.identifier[' ~ i ~ '].system') }}
                as id_system_{{ i }},
            {{ ehr_json_string('raw_json', '$.identifier[' ~ i ~ '].type.coding[0].code') }}
                as id_type_{{ i }},
            {{ ehr_json_string('raw_json', '$.identifier[' ~ i ~ '].value') }} as id_value_{{ i }},
        {%- endfor %}
        coalesce(
            {{ ehr_json_string('raw_json', '$.modality[0].code') }},
            {{ ehr_json_string('raw_json', '$.series[0].modality.code') }}
        ) as modality,
        {{ ehr_json_string('raw_json', '$.started') }} as started_text,
        {{ ehr_json_string('raw_json', '$.encounter.reference') }} as encounter_ref,
        {{ ehr_json_string('raw_json', '$.procedureReference.reference') }} as procedure_ref,
        {{ ehr_json_string('raw_json', '$.procedureCode[0].coding[0].code') }}
            as procedure_code,
        coalesce(
            {{ ehr_json_string('raw_json', '$.description') }},
            {{ ehr_json_string('raw_json', '$.procedureCode[0].text') }}
        ) as description,
        {{ ehr_json_string('raw_json', '$.series[0].bodySite.display') }} as body_site,
        cast({{ ehr_json_string('raw_json', '$.numberOfSeries') }} as int) as number_of_series,
        cast({{ ehr_json_string('raw_json', '$.numberOfInstances') }} as int)
            as number_of_instances
    from versions
    where version_rank = 1
),

identified as (
    select
        id,
        patient_ref,
        last_updated,
        status,
        -- DICOM UIDs are sent as urn:oid:<uid> (system urn:dicom:uid; Synthea uses the
        -- generic URI system urn:ietf:rfc:3986 with the same urn:oid: value); keep the bare UID.
        regexp_replace(
            coalesce(
                {%- for i in range(max_identifiers) %}
                    case when id_system_{{ i }} = 'urn:dicom:uid' then id_value_{{ i }} end,
                {%- endfor %}
                {%- for i in range(max_identifiers) %}
                    case
                        when
                            id_system_{{ i }} = 'urn:ietf:rfc:3986'
                            and id_value_{{ i }} like 'urn:oid:%'
                            then id_value_{{ i }}
                    end,
                {%- endfor %}
                null
            ),
            '^urn:oid:',
            ''
        ) as study_instance_uid,
        coalesce(
            {%- for i in range(max_identifiers) %}
                case
                    when id_type_{{ i }} = 'ACSN' or lower(id_system_{{ i }}) like '%accession%'
                        then id_value_{{ i }}
                end,
            {%- endfor %}
            null
        ) as accession_number,
        modality,
        started_text,
        encounter_ref,
        procedure_ref,
        procedure_code,
        description,
        body_site,
        number_of_series,
        number_of_instances
    from parsed
    where coalesce(status, '') not in ('entered-in-error', 'cancelled')
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
)

select
    identifiers.patient_key,
    identified.id as imaging_study_id,
    -- UIDs and accession numbers identify a person's exam: only their pseudonyms leave
    -- bronze, computed as the imaging models do so the keys join across modalities.
    {{ pseudonymize('identified.study_instance_uid') }} as study_key,
    {{ pseudonymize('identified.accession_number') }} as accession_key,
    identified.status,
    identified.modality,
    {{ ehr_parse_instant('identified.started_text') }} as started_at,
    cast({{ ehr_parse_instant('identified.started_text') }} as date) as started_date,
    {{ ehr_reference_id('identified.encounter_ref') }} as encounter_id,
    -- null when the resource names no visit; false when the named visit is missing.
    case
        when identified.encounter_ref is not null then encounters.encounter_id is not null
    end as encounter_ref_resolved,
    {{ ehr_reference_id('identified.procedure_ref') }} as procedure_id,
    identified.procedure_code,
    identified.description,
    identified.body_site,
    identified.number_of_series,
    identified.number_of_instances,
    cast(identified.last_updated as timestamp) as last_updated
from identified
inner join identifiers
    on {{ ehr_reference_id('identified.patient_ref') }} = identifiers.fhir_patient_id
left join encounters
    on {{ ehr_reference_id('identified.encounter_ref') }} = encounters.encounter_id
