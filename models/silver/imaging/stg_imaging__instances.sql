{{ config(file_format=lakehouse_file_format()) }}

-- De-identified DICOM instances, one row per SOP Instance. What leaves bronze follows
-- seeds/imaging/deid_profile.csv (DICOM PS3.15 Annex E Basic Profile): identifiers become
-- keyed hashes, dates move by the patient's secret offset, names, institution, descriptions
-- and times are dropped, and geometry and acquisition parameters stay. The raw header
-- (header_json) is read here only for the few non-identifying attributes it alone carries.
{%- set dicomdir_sop_class = '1.2.840.10008.1.3.10' %}
with source as (
    select
        sop_instance_uid,
        series_instance_uid,
        study_instance_uid,
        patient_id,
        accession_number,
        sop_class_uid,
        sop_class_name,
        modality,
        body_part_examined,
        study_date,
        series_date,
        rows as pixel_rows,
        columns as pixel_columns,
        number_of_frames,
        samples_per_pixel,
        bits_allocated,
        bits_stored,
        pixel_representation,
        photometric_interpretation,
        transfer_syntax_uid,
        transfer_syntax_name,
        has_file_meta,
        has_pixel_data,
        pixel_spacing,
        slice_thickness,
        spacing_between_slices,
        image_position_patient,
        image_orientation_patient,
        rescale_intercept,
        rescale_slope,
        instance_number,
        series_number,
        manufacturer,
        header_json,
        _ingested_at,
        _record_hash
    from {{ source('imaging', 'instances') }}
    -- Filters (each counted by data_tests/imaging/assert_imaging_instances_accounted.sql):
    -- DICOMDIR files index a media set rather than hold an image; an instance without SOP
    -- Instance UID, Series Instance UID or Patient ID cannot be keyed or linked.
    where
        coalesce(sop_class_uid, '') <> '{{ dicomdir_sop_class }}'
        and nullif(trim(sop_instance_uid), '') is not null
        and nullif(trim(series_instance_uid), '') is not null
        and nullif(trim(patient_id), '') is not null
),

-- The same instance landed twice (re-sent by the PACS, or present in two exports): keep the
-- most recently landed copy.
deduplicated as (
    select
        sop_instance_uid,
        series_instance_uid,
        study_instance_uid,
        patient_id,
        accession_number,
        sop_class_uid,
        sop_class_name,
        modality,
        body_part_examined,
        study_date,
        series_date,
        pixel_rows,
        pixel_columns,
        number_of_frames,
        samples_per_pixel,
        bits_allocated,
        bits_stored,
        pixel_representation,
        photometric_interpretation,
        transfer_syntax_uid,
        transfer_syntax_name,
        has_file_meta,
        has_pixel_data,
        pixel_spacing,
        slice_thickness,
        spacing_between_slices,
        image_position_patient,
        image_orientation_patient,
        rescale_intercept,
        rescale_slope,
        instance_number,
        series_number,
        manufacturer,
        header_json,
        row_number() over (
            partition by sop_instance_uid
            order by _ingested_at desc, _record_hash asc
        ) as copy_rank
    from source
),

keyed as (
    select
        {{ pseudonymize('sop_instance_uid') }} as instance_key,
        {{ pseudonymize('series_instance_uid') }} as series_key,
        {{ pseudonymize('study_instance_uid') }} as study_key,
        {{ pseudonymize('accession_number') }} as accession_key,
        {{ pseudonymize('patient_id') }} as patient_key,
        sop_class_uid,
        sop_class_name,
        upper(trim(modality)) as modality,
        upper(trim(body_part_examined)) as body_part_examined,
        study_date,
        series_date,
        pixel_rows,
        pixel_columns,
        number_of_frames,
        samples_per_pixel,
        bits_allocated,
        bits_stored,
        pixel_representation,
        photometric_interpretation,
        transfer_syntax_uid,
        transfer_syntax_name,
        has_file_meta,
        has_pixel_data,
        {{ imaging_array_element('pixel_spacing', 1) }} as pixel_spacing_row_mm,
        {{ imaging_array_element('pixel_spacing', 2) }} as pixel_spacing_col_mm,
        slice_thickness as slice_thickness_mm,
        spacing_between_slices as spacing_between_slices_mm,
        image_position_patient,
        image_orientation_patient,
        rescale_intercept,
        rescale_slope,
        instance_number,
        series_number,
        manufacturer,
        -- Kept by the profile (no identifying content): equipment model and acquisition
        -- parameters that explain radiomics batch effects between scanners.
        {{ dicom_header_string('header_json', '00081090') }} as manufacturer_model_name,
        {{ dicom_header_string('header_json', '00181210') }} as convolution_kernel,
        try_cast({{ dicom_header_string('header_json', '00180060') }} as double) as kvp,
        try_cast({{ dicom_header_string('header_json', '00180087') }} as double)
            as magnetic_field_strength_t
    from deduplicated
    where copy_rank = 1
),

-- One secret offset per patient (computed once per patient, not per instance).
patients as (
    select distinct patient_key
    from keyed
),

date_shifts as (
    select
        patient_key,
        {{ patient_date_shift_days('patient_key') }} as shift_days
    from patients
),

index_dates as (
    select
        patient_key,
        index_date
    from {{ ref('int_ehr__index_dates') }}
)

select
    keyed.instance_key,
    keyed.series_key,
    keyed.study_key,
    keyed.accession_key,
    keyed.patient_key,
    keyed.sop_class_uid,
    keyed.sop_class_name,
    keyed.modality,
    keyed.body_part_examined,
    {{ imaging_add_days('keyed.study_date', 'date_shifts.shift_days') }} as shifted_study_date,
    {{ imaging_add_days('keyed.series_date', 'date_shifts.shift_days') }} as shifted_series_date,
    {{ imaging_days_between('index_dates.index_date', 'keyed.study_date') }} as days_from_index,
    keyed.pixel_rows,
    keyed.pixel_columns,
    keyed.number_of_frames,
    keyed.samples_per_pixel,
    keyed.bits_allocated,
    keyed.bits_stored,
    keyed.pixel_representation,
    keyed.photometric_interpretation,
    keyed.transfer_syntax_uid,
    keyed.transfer_syntax_name,
    keyed.has_file_meta,
    keyed.has_pixel_data,
    keyed.pixel_spacing_row_mm,
    keyed.pixel_spacing_col_mm,
    keyed.slice_thickness_mm,
    keyed.spacing_between_slices_mm,
    keyed.image_position_patient,
    keyed.image_orientation_patient,
    keyed.rescale_intercept,
    keyed.rescale_slope,
    keyed.instance_number,
    keyed.series_number,
    keyed.manufacturer,
    keyed.manufacturer_model_name,
    keyed.convolution_kernel,
    keyed.kvp,
    keyed.magnetic_field_strength_t
from keyed
inner join date_shifts
    on keyed.patient_key = date_shifts.patient_key
left join index_dates
    on keyed.patient_key = index_dates.patient_key
