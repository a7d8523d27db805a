{{ config(
    materialized='incremental',
    file_format=lakehouse_file_format(),
    incremental_strategy=wearables_incremental_strategy('insert_new'),
    unique_key='event_id',
) }}

-- One row per wearable event of an enrolled patient, de-duplicated, in canonical units, with
-- implausible values flagged rather than dropped. Incremental: a run reads only the bronze rows
-- landed after the newest `_ingested_at` already here, whatever their event time, so an event
-- that arrives days late still enters; it never rewrites an event it already holds (the first
-- arrival of a re-sent event wins). Filters and the watermark rule: _wearables__models.yml.
with
{% if is_incremental() %}
    held_events as (
        select
            event_id,
            patient_key,
            start_time,
            _ingested_at
        from {{ this }}
    ),
{% else %}
    -- A full build holds nothing yet: no high-water mark, no watermark.
    held_events as (
        select
            cast(null as string) as event_id,
            cast(null as string) as patient_key,
            cast(null as timestamp) as start_time,
            cast(null as timestamp) as _ingested_at
        from {{ source('wearables', 'events') }}
        where 1 = 0
    ),
{% endif %}

processed as (
    select
        coalesce(
            max(_ingested_at), cast('1900-01-01 00:00:00' as timestamp)
        ) as max_ingested_at
    from held_events
),

-- Newest event time per patient before this run: the watermark of the patient's stream.
watermarks as (
    select
        patient_key,
        max(start_time) as watermark
    from held_events
    group by patient_key
),

received as (
    select
        b.event_id,
        b.device_id,
        b.device_model,
        b.value as value_as_sent,
        b.value_num,
        b.unit as unit_as_sent,
        b.firmware_version,
        b.battery_pct,
        b._source_file,
        b._source_locator,
        b._record_hash,
        cast(b.start_time as timestamp) as start_time,
        cast(b.end_time as timestamp) as end_time,
        cast(b.recorded_at as timestamp) as recorded_at,
        cast(b.arrival_time as timestamp) as arrival_time,
        cast(b._ingested_at as timestamp) as _ingested_at,
        lower(trim(b.metric)) as metric
    from {{ source('wearables', 'events') }} as b
    cross join processed as p
    where
        b.event_id is not null
        and cast(b._ingested_at as timestamp) > p.max_ingested_at
),

-- A re-sent event is byte-identical to its first copy: keep the copy that arrived first.
first_arrival as (
    select
        event_id,
        device_id,
        device_model,
        value_as_sent,
        value_num,
        unit_as_sent,
        firmware_version,
        battery_pct,
        _source_file,
        _source_locator,
        _record_hash,
        metric,
        start_time,
        end_time,
        recorded_at,
        arrival_time,
        _ingested_at,
        row_number() over (
            partition by event_id
            order by
                arrival_time asc nulls last,
                _ingested_at asc,
                _source_file asc,
                _source_locator asc
        ) as arrival_rank
    from received
),

readable as (
    select
        f.event_id,
        f.device_model,
        f.value_as_sent,
        f.value_num,
        f.unit_as_sent,
        f.firmware_version,
        f.battery_pct,
        f._source_file,
        f._source_locator,
        f._record_hash,
        f.metric,
        f.start_time,
        f.end_time,
        f.recorded_at,
        f.arrival_time,
        f._ingested_at,
        {{ pseudonymize('f.device_id') }} as device_key,
        cast(f.start_time as date) as event_day,
        -- Apple Health calls light sleep "core"; some exports say "awake".
        case lower(trim(f.value_as_sent))
            when 'wake' then 'wake'
            when 'awake' then 'wake'
            when 'light' then 'light'
            when 'core' then 'light'
            when 'deep' then 'deep'
            when 'rem' then 'rem'
        end as sleep_stage
    from first_arrival as f
    -- An event already held (a re-send landing in a later run) is never read again.
    left join held_events as h on f.event_id = h.event_id
    where
        f.arrival_rank = 1
        and h.event_id is null
        and f.device_id is not null
        and f.start_time is not null
        and f.end_time is not null
),

-- The register is the only link from a device to a patient; an event counts only inside the
-- enrollment period (enrolled_on inclusive, withdrawn_on exclusive). Should two register lines
-- of one device overlap, the later enrollment wins.
linked as (
    select
        r.event_id,
        r.device_key,
        r.device_model,
        r.value_as_sent,
        r.value_num,
        r.unit_as_sent,
        r.firmware_version,
        r.battery_pct,
        r._source_file,
        r._source_locator,
        r._record_hash,
        r.metric,
        r.sleep_stage,
        r.start_time,
        r.end_time,
        r.recorded_at,
        r.arrival_time,
        r._ingested_at,
        e.patient_key,
        row_number() over (
            partition by r.event_id order by e.enrolled_on desc
        ) as enrollment_rank
    from readable as r
    inner join {{ ref('stg_wearables__enrollment') }} as e
        on
            r.device_key = e.device_key
            and r.event_day >= e.enrolled_on
            and (e.withdrawn_on is null or r.event_day < e.withdrawn_on)
    -- A value that cannot be read is no measurement: numbers must parse, stages be known.
    where
        (r.metric = 'sleep_stage' and r.sleep_stage is not null)
        or (r.metric != 'sleep_stage' and r.value_num is not null)
),

normalised as (
    select
        l.event_id,
        l.patient_key,
        l.device_key,
        l.device_model,
        l.metric,
        l.sleep_stage,
        l.value_as_sent,
        l.unit_as_sent,
        c.canonical_unit,
        l.start_time,
        l.end_time,
        l.recorded_at,
        l.firmware_version,
        l.battery_pct,
        l.arrival_time,
        l._ingested_at,
        l._source_file,
        l._source_locator,
        l._record_hash,
        r.range_basis,
        r.min_value,
        r.max_value,
        -- Canonical value = value * factor + offset (SpO2 "ratio" 0.97 -> 97 %).
        l.value_num * c.factor + c.offset as canonical_value,  -- noqa: RF04
        (
            {{ wearables_epoch_seconds('l.end_time') }}
            - {{ wearables_epoch_seconds('l.start_time') }}
        ) / 60.0 as duration_minutes,
        (
            {{ wearables_epoch_seconds('l.arrival_time') }}
            - {{ wearables_epoch_seconds('l.end_time') }}
        ) / 3600.0 as arrival_delay_hours,
        -- Sleep and the nightly SpO2 belong to the morning the wearer wakes up.
        case
            when l.metric in ('sleep_stage', 'spo2')
                then {{ wearables_day_of('l.start_time', 12) }}
            else {{ wearables_day_of('l.start_time') }}
        end as activity_date
    from linked as l
    left join {{ ref('unit_conversions') }} as c
        on l.metric = lower(c.metric) and lower(trim(l.unit_as_sent)) = lower(c.unit)
    left join {{ ref('wearables_plausible_ranges') }} as r
        on l.metric = lower(r.metric)
    where l.enrollment_rank = 1
),

checked as (
    select
        n.event_id,
        n.patient_key,
        n.device_key,
        n.device_model,
        n.metric,
        n.sleep_stage,
        n.canonical_value,
        n.canonical_unit,
        n.value_as_sent,
        n.unit_as_sent,
        n.start_time,
        n.end_time,
        n.recorded_at,
        n.duration_minutes,
        n.activity_date,
        n.firmware_version,
        n.battery_pct,
        n.arrival_time,
        n.arrival_delay_hours,
        n._ingested_at,
        n._source_file,
        n._source_locator,
        n._record_hash,
        case
            when n.canonical_unit is null then 'unknown_unit'
            when n.end_time < n.start_time then 'end_before_start'
            when n.range_basis = 'per_minute' and n.duration_minutes <= 0 then 'zero_duration'
            when
                (n.range_basis = 'value' and n.canonical_value < n.min_value)
                or (
                    n.range_basis = 'per_minute'
                    and n.canonical_value / n.duration_minutes < n.min_value
                )
                or (n.range_basis = 'duration_minutes' and n.duration_minutes < n.min_value)
                then 'below_plausible_range'
            when
                (n.range_basis = 'value' and n.canonical_value > n.max_value)
                or (
                    n.range_basis = 'per_minute'
                    and n.canonical_value / n.duration_minutes > n.max_value
                )
                or (n.range_basis = 'duration_minutes' and n.duration_minutes > n.max_value)
                then 'above_plausible_range'
        end as implausible_reason,
        w.watermark as watermark_at_arrival,
        coalesce(
            n.start_time < {{ wearables_shift_days(
                'w.watermark', -1 * var('wearables_lookback_days', 7)
            ) }},
            false
        ) as beyond_watermark
    from normalised as n
    left join watermarks as w on n.patient_key = w.patient_key
)

select
    event_id,
    patient_key,
    device_key,
    device_model,
    metric,
    sleep_stage,
    canonical_value,
    canonical_unit,
    value_as_sent,
    unit_as_sent,
    start_time,
    end_time,
    recorded_at,
    duration_minutes,
    activity_date,
    firmware_version,
    battery_pct,
    arrival_time,
    arrival_delay_hours,
    implausible_reason,
    watermark_at_arrival,
    beyond_watermark,
    _ingested_at,
    _source_file,
    _source_locator,
    _record_hash,
    implausible_reason is null as is_plausible
from checked
