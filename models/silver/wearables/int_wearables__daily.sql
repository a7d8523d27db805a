{{ config(
    materialized='incremental',
    file_format=lakehouse_file_format(),
    incremental_strategy=wearables_incremental_strategy('replace_days'),
    unique_key=['patient_key', 'activity_date', 'metric'],
    partition_by=wearables_replace_partition_by(),
) }}

-- Daily aggregates per patient, day and metric from the plausible events that arrived within
-- the watermark's lookback (events flagged beyond_watermark in stg_wearables__events are never
-- aggregated). Incremental: the days touched by events that arrived since the last run are
-- recomputed whole, for every patient with data that day, so a late event updates the day it
-- belongs to. Since a day's value depends only on its events, recomputing more than the
-- touched days (a month partition on Spark-parquet, see wearables_replace_unit) gives the
-- same rows. Rule and rationale: _wearables__models.yml, docs/wearables.md.
{%- set replace_unit = wearables_replace_unit() %}
with events as (
    select
        patient_key,
        activity_date,
        metric,
        sleep_stage,
        canonical_value,
        duration_minutes,
        is_plausible,
        beyond_watermark,
        _ingested_at,
        {{ wearables_month_of('activity_date') }} as activity_month
    from {{ ref('stg_wearables__events') }}
),

{% if is_incremental() %}
    processed as (
        select
            coalesce(
                max(last_ingested_at), cast('1900-01-01 00:00:00' as timestamp)
            ) as max_ingested_at
        from {{ this }}
    ),

    touched as (
        select distinct e.{{ replace_unit }}
        from events as e
        cross join processed as p
        where e._ingested_at > p.max_ingested_at and not e.beyond_watermark
    ),
{% endif %}

day_events as (
    select
        e.patient_key,
        e.activity_date,
        e.activity_month,
        e.metric,
        e.sleep_stage,
        e.canonical_value,
        e.duration_minutes,
        e._ingested_at
    from events as e
    {% if is_incremental() %}
        inner join touched as t on e.{{ replace_unit }} = t.{{ replace_unit }}
    {% endif %}
    where e.is_plausible and not e.beyond_watermark
),

-- Heart rate comes as 2-hour means: the lowest of the day is its resting heart rate, and
-- heart rate is only measured on the wrist, so its intervals are the wear time.
heart_rate as (
    select
        patient_key,
        activity_date,
        activity_month,
        min(canonical_value) as resting_heart_rate,
        avg(canonical_value) as heart_rate_mean,
        sum(duration_minutes) as wear_minutes,
        count(*) as n_events,
        max(_ingested_at) as last_ingested_at
    from day_events
    where metric = 'heart_rate'
    group by patient_key, activity_date, activity_month
),

steps as (
    select
        patient_key,
        activity_date,
        activity_month,
        sum(canonical_value) as steps_total,
        count(*) as n_events,
        max(_ingested_at) as last_ingested_at
    from day_events
    where metric = 'steps'
    group by patient_key, activity_date, activity_month
),

-- One nightly saturation per night; the minimum is what a clinician screens for.
spo2 as (
    select
        patient_key,
        activity_date,
        activity_month,
        min(canonical_value) as spo2_min,
        avg(canonical_value) as spo2_mean,
        count(*) as n_events,
        max(_ingested_at) as last_ingested_at
    from day_events
    where metric = 'spo2'
    group by patient_key, activity_date, activity_month
),

sleep as (
    select
        patient_key,
        activity_date,
        activity_month,
        sum(
            case when sleep_stage != 'wake' then duration_minutes else 0 end
        ) as sleep_minutes,
        count(*) as n_events,
        max(_ingested_at) as last_ingested_at
    from day_events
    where metric = 'sleep_stage'
    group by patient_key, activity_date, activity_month
),

long_format as (
    select
        patient_key,
        activity_date,
        activity_month,
        'resting_heart_rate' as metric,
        resting_heart_rate as metric_value,
        'bpm' as unit,
        n_events,
        last_ingested_at
    from heart_rate
    union all
    select
        patient_key,
        activity_date,
        activity_month,
        'heart_rate_mean' as metric,
        heart_rate_mean as metric_value,
        'bpm' as unit,
        n_events,
        last_ingested_at
    from heart_rate
    union all
    select
        patient_key,
        activity_date,
        activity_month,
        'wear_minutes' as metric,
        wear_minutes as metric_value,
        'min' as unit,
        n_events,
        last_ingested_at
    from heart_rate
    union all
    select
        patient_key,
        activity_date,
        activity_month,
        'steps_total' as metric,
        steps_total as metric_value,
        'count' as unit,
        n_events,
        last_ingested_at
    from steps
    union all
    select
        patient_key,
        activity_date,
        activity_month,
        'spo2_min' as metric,
        spo2_min as metric_value,
        '%' as unit,
        n_events,
        last_ingested_at
    from spo2
    union all
    select
        patient_key,
        activity_date,
        activity_month,
        'spo2_mean' as metric,
        spo2_mean as metric_value,
        '%' as unit,
        n_events,
        last_ingested_at
    from spo2
    union all
    select
        patient_key,
        activity_date,
        activity_month,
        'sleep_minutes' as metric,
        sleep_minutes as metric_value,
        'min' as unit,
        n_events,
        last_ingested_at
    from sleep
)

select
    patient_key,
    activity_date,
    metric,
    cast(metric_value as double) as metric_value,
    unit,
    cast(n_events as int) as n_events,
    last_ingested_at,
    {{ wearables_run_timestamp() }} as aggregated_at,
    activity_month
from long_format
