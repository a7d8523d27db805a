{{ config(file_format=lakehouse_file_format()) }}

-- De-identified DICOM series, one row per Series Instance UID (as its keyed hash): the unit
-- radiomics features and embeddings are computed on. Geometry is summarised over the
-- series' instances; a series whose instances disagree (a re-sent series with new
-- acquisition parameters, say) reports the smallest value.
with instances as (
    select
        series_key,
        study_key,
        patient_key,
        modality,
        body_part_examined,
        shifted_series_date,
        days_from_index,
        series_number,
        has_pixel_data,
        pixel_rows,
        pixel_columns,
        pixel_spacing_row_mm,
        pixel_spacing_col_mm,
        slice_thickness_mm,
        spacing_between_slices_mm,
        transfer_syntax_uid,
        manufacturer,
        manufacturer_model_name,
        convolution_kernel,
        kvp,
        magnetic_field_strength_t
    from {{ ref('stg_imaging__instances') }}
),

aggregated as (
    select
        series_key,
        min(study_key) as study_key,
        min(patient_key) as patient_key,
        min(modality) as modality,
        min(body_part_examined) as body_part_examined,
        min(shifted_series_date) as shifted_series_date,
        min(days_from_index) as days_from_index,
        min(series_number) as series_number,
        count(*) as n_instances,
        count(case when has_pixel_data then 1 end) as n_instances_with_pixels,
        min(pixel_rows) as pixel_rows,
        min(pixel_columns) as pixel_columns,
        min(pixel_spacing_row_mm) as pixel_spacing_row_mm,
        min(pixel_spacing_col_mm) as pixel_spacing_col_mm,
        min(slice_thickness_mm) as slice_thickness_mm,
        min(spacing_between_slices_mm) as spacing_between_slices_mm,
        min(transfer_syntax_uid) as transfer_syntax_uid,
        min(manufacturer) as manufacturer,
        min(manufacturer_model_name) as manufacturer_model_name,
        min(convolution_kernel) as convolution_kernel,
        min(kvp) as kvp,
        min(magnetic_field_strength_t) as magnetic_field_strength_t
    from instances
    group by series_key
)

select
    series_key,
    study_key,
    patient_key,
    modality,
    body_part_examined,
    shifted_series_date,
    days_from_index,
    series_number,
    cast(n_instances as int) as n_instances,
    cast(n_instances_with_pixels as int) as n_instances_with_pixels,
    pixel_rows,
    pixel_columns,
    pixel_spacing_row_mm,
    pixel_spacing_col_mm,
    slice_thickness_mm,
    spacing_between_slices_mm,
    transfer_syntax_uid,
    manufacturer,
    manufacturer_model_name,
    convolution_kernel,
    kvp,
    magnetic_field_strength_t
from aggregated
