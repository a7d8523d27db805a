{#-
    patient_date_shift_days(patient_key_expr): the per-patient date offset of de-identified
    silver, an integer in [-180, 180] without 0 (a zero shift would publish the real date).

        {{ patient_date_shift_days('patient_key') }} as shift_days  -- once per patient,
        then add shift_days to each of the patient's dates (imaging: imaging_add_days).

    Every date of one patient moves by the same number of days, so intervals between that
    patient's events (diagnosis to scan, scan to follow-up scan) stay exact, while calendar
    dates, weekdays and seasons no longer match the real ones; different patients move by
    different amounts, so dates cannot be lined up across patients either.

    Derivation: the offset comes from the keyed hash pseudonymize('date-shift:' || patient_key),
    not from patient_key itself. patient_key is published in silver and gold and this macro
    is public, so an offset computed from patient_key alone could be recomputed by any reader
    and undone; re-keying with the pseudonym secret keeps it as secret as the pseudonyms.
    The first 8 hex digits (32 bits) of that hash are read as an integer n (the hex->int
    conversion is engine-specific: date_shift_hex_to_bigint), and n mod 360 maps 0..179 onto
    -180..-1 and 180..359 onto 1..180 (2^32 is not a multiple of 360: a bias below 1e-7).
    Rotating the pseudonym key re-draws every offset, so silver and gold must be rebuilt
    together (as for patient_key).

    Privacy standing (HIPAA, 45 CFR 164.514(b)): shifted dates are NOT Safe Harbor. Safe
    Harbor (b)(2) removes every date element more specific than the year that relates to an
    individual (and ages over 89); its alternative here would be year-only generalisation,
    which destroys the day-level intervals the features need. Date shifting is a
    pseudonymisation that fits the Expert Determination route (b)(1): an expert assesses
    the residual risk of the shifted dataset (offsets secret, intervals kept). It mirrors
    DICOM PS3.15 Annex E's "Retain Longitudinal Temporal Information with Modified Dates"
    option (E.3.6). Models that need time relative to diagnosis should prefer
    days_from_index (real event date minus real index date), which needs no calendar date.
-#}
{% macro patient_date_shift_days(patient_key_expr) -%}
    {%- set seed_hash = pseudonymize("concat('date-shift:', " ~ patient_key_expr ~ ")") -%}
    {%- set bucket -%}
        ({{ date_shift_hex_to_bigint('substr(' ~ seed_hash ~ ', 1, 8)') }} % 360)
    {%- endset -%}
    cast(
        {{ bucket }} - case when {{ bucket }} < 180 then 180 else 179 end as int
    )
{%- endmacro %}

{#- A non-negative integer from a string of at most 15 hex digits (no prefix). -#}
{% macro date_shift_hex_to_bigint(hex_expr) -%}
    {{ return(adapter.dispatch('date_shift_hex_to_bigint', 'multimodal_lakehouse')(hex_expr)) }}
{%- endmacro %}

{#- Spark and Databricks: conv() returns the base-10 digits as a string. -#}
{% macro default__date_shift_hex_to_bigint(hex_expr) -%}
    cast(conv({{ hex_expr }}, 16, 10) as bigint)
{%- endmacro %}

{#- DuckDB: casting a '0x'-prefixed string to an integer type reads it as hexadecimal. -#}
{% macro duckdb__date_shift_hex_to_bigint(hex_expr) -%}
    cast(concat('0x', {{ hex_expr }}) as bigint)
{%- endmacro %}
