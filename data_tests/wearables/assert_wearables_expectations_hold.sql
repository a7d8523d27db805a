-- The drop and fail rules of seeds/wearables/wearables_expectations.csv hold on silver: an
-- event the Spark Declarative Pipeline would leave out (or stop on) never reaches
-- stg_wearables__events either, so both paths aggregate the same events.
-- depends_on: {{ ref('wearables_expectations') }}
{{ config(severity='error') }}

{{ wearables_expectation_violations(ref('stg_wearables__events'), ['drop', 'fail']) }}
