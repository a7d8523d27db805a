-- The warn rules of seeds/wearables/wearables_expectations.csv on silver: events kept but
-- flagged (unknown unit, implausible value), never aggregated. Reported, not an error, as
-- the pipeline reports them (the expectations_warned column, or the Databricks event log).
-- depends_on: {{ ref('wearables_expectations') }}
{{ config(severity='warn') }}

{{ wearables_expectation_violations(ref('stg_wearables__events'), ['warn']) }}
