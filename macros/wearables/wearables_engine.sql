{#-
    Engine helpers of the wearables models. Each is resolved per adapter through
    adapter.dispatch (default__ serves Spark and Databricks, duckdb__ the local target), so the
    models never branch on the target.
-#}

{#-
    wearables_incremental_strategy(mode): the incremental strategy of a wearables model.
    - mode 'insert_new': the model only ever adds rows it does not hold yet (events,
      de-duplicated against the existing table by the model's own SQL);
    - mode 'replace_days': the model recomputes whole days and the new rows replace the old
      rows of those days (daily aggregates).
    DuckDB >= 1.4 and Delta/Iceberg/Hudi tables support MERGE on the unique_key, which serves
    both modes. Spark on parquet has no MERGE: 'insert_new' appends, 'replace_days' overwrites
    the day partitions the new rows belong to (see wearables_replace_partition_by).
-#}
{% macro wearables_incremental_strategy(mode) -%}
    {{ return(adapter.dispatch('wearables_incremental_strategy', 'multimodal_lakehouse')(mode)) }}
{%- endmacro %}

{% macro default__wearables_incremental_strategy(mode) -%}
    {%- if lakehouse_file_format() in ['delta', 'iceberg', 'hudi'] -%}
        {{ return('merge') }}
    {%- elif mode == 'insert_new' -%}
        {{ return('append') }}
    {%- else -%}
        {{ return('insert_overwrite') }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__wearables_incremental_strategy(mode) -%}
    {{ return('merge') }}
{%- endmacro %}

{#-
    wearables_replace_unit(): the column whose values a 'replace_days' run recomputes whole.
    With MERGE it is the day (activity_date): only the touched days are rewritten. With
    insert_overwrite it is the month (activity_month), the table's partition column: one
    partition per day would make thousands of tiny partitions that Spark is slow to write
    and to list, and the partition is the unit insert_overwrite replaces.
-#}
{% macro wearables_replace_unit() -%}
    {%- if wearables_incremental_strategy('replace_days') == 'insert_overwrite' -%}
        {{ return('activity_month') }}
    {%- else -%}
        {{ return('activity_date') }}
    {%- endif -%}
{%- endmacro %}

{#-
    wearables_replace_partition_by(): partition_by of a 'replace_days' model. Only
    insert_overwrite needs partitions (it replaces exactly the partitions present in the new
    rows: dynamic partition overwrite); with MERGE, partitions would only make small files.
-#}
{% macro wearables_replace_partition_by() -%}
    {%- if wearables_incremental_strategy('replace_days') == 'insert_overwrite' -%}
        {{ return([wearables_replace_unit()]) }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#- wearables_epoch_seconds(ts): seconds since 1970-01-01 UTC of a timestamp, as a number. -#}
{% macro wearables_epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('wearables_epoch_seconds', 'multimodal_lakehouse')(ts)) }}
{%- endmacro %}

{% macro default__wearables_epoch_seconds(ts) -%}
    cast(unix_timestamp({{ ts }}) as double)
{%- endmacro %}

{% macro duckdb__wearables_epoch_seconds(ts) -%}
    epoch({{ ts }})
{%- endmacro %}

{#-
    wearables_day_of(ts, shift_hours): the UTC calendar date of ts + shift_hours. Sleep is
    attributed to the day the wearer wakes up by shifting the instant by 12 hours (a night
    that starts at 23:30 or at 00:30 belongs to the same morning).
-#}
{% macro wearables_day_of(ts, shift_hours=0) -%}
    {%- if shift_hours -%}
        cast({{ dbt.dateadd('hour', shift_hours, ts) }} as date)
    {%- else -%}
        cast({{ ts }} as date)
    {%- endif -%}
{%- endmacro %}

{#- wearables_days_between(first, second): whole days from date `first` to date `second`. -#}
{% macro wearables_days_between(first, second) -%}
    cast({{ dbt.datediff(first, second, 'day') }} as int)
{%- endmacro %}

{#-
    wearables_run_timestamp(): when this dbt invocation started, as a UTC timestamp literal;
    daily rows carry it so one can see which days a run recomputed.
-#}
{% macro wearables_run_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
{%- endmacro %}

{#- wearables_shift_days(ts, days): the timestamp ts moved by a (possibly negative) day count. -#}
{% macro wearables_shift_days(ts, days) -%}
    {{ dbt.dateadd('day', days, ts) }}
{%- endmacro %}

{#- wearables_month_of(day): the first day of the month of a date, as a date. -#}
{% macro wearables_month_of(day) -%}
    cast({{ dbt.date_trunc('month', day) }} as date)
{%- endmacro %}
