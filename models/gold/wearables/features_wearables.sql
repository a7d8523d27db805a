{{ config(file_format=lakehouse_file_format()) }}

-- Wearable features per patient as known at the landmark (index date + feature_landmark_days):
-- only days on or before the landmark are used, so nothing observed after it (and nothing of
-- the outcome window beyond it) can leak in. Activity decline shows as falling steps and a
-- rising resting heart rate; the slopes capture it, the wear days say how much to trust them.
with daily as (
    select
        patient_key,
        activity_date,
        resting_heart_rate,
        steps_total,
        spo2_min,
        sleep_minutes,
        is_wear_day
    from {{ ref('wearables_daily') }}
),

index_dates as (
    select
        patient_key,
        index_date,
        landmark_date
    from {{ ref('int_ehr__index_dates') }}
),

observed as (
    select
        d.patient_key,
        i.index_date,
        i.landmark_date,
        d.activity_date,
        d.resting_heart_rate,
        d.spo2_min,
        d.sleep_minutes,
        d.is_wear_day,
        -- Steps of days worn under 10 hours undercount activity: left out.
        case when d.is_wear_day then d.steps_total end as valid_steps,
        {{ wearables_days_between('i.landmark_date', 'd.activity_date') }} as day_offset
    from daily as d
    inner join index_dates as i on d.patient_key = i.patient_key
    where d.activity_date <= i.landmark_date
),

windowed as (
    select
        patient_key,
        index_date,
        landmark_date,
        activity_date,
        resting_heart_rate,
        spo2_min,
        sleep_minutes,
        is_wear_day,
        valid_steps,
        day_offset,
        day_offset > -7 as in_7d,
        day_offset > -30 as in_30d
    from observed
),

features as (
    select
        patient_key,
        index_date,
        landmark_date,
        count(*) as days_observed,
        min(activity_date) as first_observed_date,
        max(activity_date) as last_observed_date,
        sum(case when is_wear_day and in_7d then 1 else 0 end) as wear_days_7d,
        sum(case when is_wear_day and in_30d then 1 else 0 end) as wear_days_30d,
        avg(resting_heart_rate) as resting_hr_mean,
        avg(case when in_7d then resting_heart_rate end) as resting_hr_mean_7d,
        avg(case when in_30d then resting_heart_rate end) as resting_hr_mean_30d,
        avg(valid_steps) as steps_mean,
        avg(case when in_7d then valid_steps end) as steps_mean_7d,
        avg(case when in_30d then valid_steps end) as steps_mean_30d,
        min(spo2_min) as spo2_min,
        min(case when in_7d then spo2_min end) as spo2_min_7d,
        min(case when in_30d then spo2_min end) as spo2_min_30d,
        avg(sleep_minutes) as sleep_minutes_mean,
        avg(case when in_7d then sleep_minutes end) as sleep_minutes_mean_7d,
        avg(case when in_30d then sleep_minutes end) as sleep_minutes_mean_30d,
        regr_slope(valid_steps, day_offset) as steps_slope_per_day,
        regr_slope(case when in_30d then valid_steps end, day_offset) as steps_slope_30d,
        regr_slope(resting_heart_rate, day_offset) as resting_hr_slope_per_day,
        regr_slope(
            case when in_30d then resting_heart_rate end, day_offset
        ) as resting_hr_slope_30d
    from windowed
    group by patient_key, index_date, landmark_date
)

select
    patient_key,
    index_date,
    landmark_date,
    cast(days_observed as int) as days_observed,
    first_observed_date,
    last_observed_date,
    cast(wear_days_7d as int) as wear_days_7d,
    cast(wear_days_30d as int) as wear_days_30d,
    cast(wear_days_30d / 30.0 as double) as wear_coverage_30d,
    cast(resting_hr_mean as double) as resting_hr_mean,
    cast(resting_hr_mean_7d as double) as resting_hr_mean_7d,
    cast(resting_hr_mean_30d as double) as resting_hr_mean_30d,
    cast(steps_mean as double) as steps_mean,
    cast(steps_mean_7d as double) as steps_mean_7d,
    cast(steps_mean_30d as double) as steps_mean_30d,
    cast(spo2_min as double) as spo2_min,
    cast(spo2_min_7d as double) as spo2_min_7d,
    cast(spo2_min_30d as double) as spo2_min_30d,
    cast(sleep_minutes_mean as double) as sleep_minutes_mean,
    cast(sleep_minutes_mean_7d as double) as sleep_minutes_mean_7d,
    cast(sleep_minutes_mean_30d as double) as sleep_minutes_mean_30d,
    cast(steps_slope_per_day as double) as steps_slope_per_day,
    cast(steps_slope_30d as double) as steps_slope_30d,
    cast(resting_hr_slope_per_day as double) as resting_hr_slope_per_day,
    cast(resting_hr_slope_30d as double) as resting_hr_slope_30d
from features
