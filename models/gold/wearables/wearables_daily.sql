{{ config(file_format=lakehouse_file_format()) }}

-- Day-by-day wearable trends of each monitored patient for the tumour-board plots: the daily
-- values side by side, their 7-day rolling means, and the day relative to diagnosis.
with daily as (
    select
        patient_key,
        activity_date,
        metric,
        metric_value
    from {{ ref('int_wearables__daily') }}
),

index_dates as (
    select
        patient_key,
        index_date
    from {{ ref('int_ehr__index_dates') }}
),

wide as (
    select
        patient_key,
        activity_date,
        max(case when metric = 'resting_heart_rate' then metric_value end) as resting_heart_rate,
        max(case when metric = 'heart_rate_mean' then metric_value end) as heart_rate_mean,
        max(case when metric = 'steps_total' then metric_value end) as steps_total,
        max(case when metric = 'spo2_min' then metric_value end) as spo2_min,
        max(case when metric = 'sleep_minutes' then metric_value end) as sleep_minutes,
        max(case when metric = 'wear_minutes' then metric_value end) as wear_minutes
    from daily
    group by patient_key, activity_date
),

-- A valid wear day has at least 10 hours on the wrist (the usual accelerometry criterion);
-- step counts of shorter days undercount activity and are kept out of the rolling means.
flagged as (
    select
        patient_key,
        activity_date,
        resting_heart_rate,
        heart_rate_mean,
        steps_total,
        spo2_min,
        sleep_minutes,
        coalesce(wear_minutes, 0) as wear_minutes,
        coalesce(wear_minutes, 0) >= {{ var('wearables_min_wear_minutes', 600) }} as is_wear_day,
        {{ wearables_days_between("cast('1970-01-01' as date)", 'activity_date') }} as day_number
    from wide
),

rolling as (
    select
        patient_key,
        activity_date,
        resting_heart_rate,
        heart_rate_mean,
        steps_total,
        spo2_min,
        sleep_minutes,
        wear_minutes,
        is_wear_day,
        avg(case when is_wear_day then steps_total end) over (
            partition by patient_key order by day_number
            range between 6 preceding and current row
        ) as steps_7d_mean,
        avg(resting_heart_rate) over (
            partition by patient_key order by day_number
            range between 6 preceding and current row
        ) as resting_heart_rate_7d_mean
    from flagged
)

select
    r.patient_key,
    r.activity_date,
    {{ wearables_days_between('i.index_date', 'r.activity_date') }} as days_from_index,
    cast(r.resting_heart_rate as double) as resting_heart_rate,
    cast(r.heart_rate_mean as double) as heart_rate_mean,
    cast(r.steps_total as bigint) as steps_total,
    cast(r.spo2_min as double) as spo2_min,
    cast(r.sleep_minutes as double) as sleep_minutes,
    cast(r.wear_minutes as double) as wear_minutes,
    r.is_wear_day,
    cast(r.steps_7d_mean as double) as steps_7d_mean,
    cast(r.resting_heart_rate_7d_mean as double) as resting_heart_rate_7d_mean
from rolling as r
left join index_dates as i on r.patient_key = i.patient_key
