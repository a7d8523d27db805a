-- Every bronze wearables event row is in stg_wearables__events or explained by one of the
-- model's documented filters; and every silver event comes from bronze. Returns the rows that
-- break this (a failing test lists them with what was found).
with bronze as (
    select
        event_id,
        device_id,
        metric,
        value,
        value_num,
        start_time,
        end_time,
        _source_file,
        _source_locator
    from {{ source('wearables', 'events') }}
),

silver as (
    select
        event_id,
        _source_file,
        _source_locator
    from {{ ref('stg_wearables__events') }}
),

silver_event_ids as (
    select distinct event_id
    from silver
),

register as (
    select
        device_id,
        enrolled_on,
        withdrawn_on
    from {{ source('wearables', 'enrollment') }}
    where device_id is not null and patient_mrn is not null and enrolled_on is not null
),

enrolled_devices as (
    select distinct upper(trim(device_id)) as device_id
    from register
),

in_period as (
    select distinct
        b._source_file,
        b._source_locator
    from bronze as b
    inner join register as r
        on
            upper(trim(b.device_id)) = upper(trim(r.device_id))
            and cast(b.start_time as date) >= r.enrolled_on
            and (r.withdrawn_on is null or cast(b.start_time as date) < r.withdrawn_on)
),

explained as (
    select
        b.event_id,
        b._source_file,
        b._source_locator,
        case
            when k.event_id is not null then 'kept'
            when b.event_id is null then 'no_event_id'
            when d.event_id is not null then 'duplicate_event_id'
            when b.device_id is null or e.device_id is null then 'device_not_enrolled'
            when b.start_time is null or b.end_time is null then 'unparseable_value'
            when p._source_file is null then 'outside_enrollment'
            when
                lower(trim(b.metric)) = 'sleep_stage'
                and lower(trim(b.value)) not in ('wake', 'awake', 'light', 'core', 'deep', 'rem')
                then 'unparseable_value'
            when lower(trim(b.metric)) != 'sleep_stage' and b.value_num is null
                then 'unparseable_value'
        end as disposition
    from bronze as b
    left join silver as k
        on b._source_file = k._source_file and b._source_locator = k._source_locator
    left join silver_event_ids as d on b.event_id = d.event_id
    left join enrolled_devices as e on upper(trim(b.device_id)) = e.device_id
    left join in_period as p
        on b._source_file = p._source_file and b._source_locator = p._source_locator
),

unexplained_bronze as (
    select
        event_id,
        _source_file,
        _source_locator,
        'bronze row neither in silver nor explained' as problem
    from explained
    where disposition is null
),

silver_without_bronze as (
    select
        s.event_id,
        s._source_file,
        s._source_locator,
        'silver row without its bronze row' as problem
    from silver as s
    left join bronze as b
        on s._source_file = b._source_file and s._source_locator = b._source_locator
    where b._source_file is null
)

select
    event_id,
    _source_file,
    _source_locator,
    problem
from unexplained_bronze
union all
select
    event_id,
    _source_file,
    _source_locator,
    problem
from silver_without_bronze
