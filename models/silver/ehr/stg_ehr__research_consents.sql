{{ config(file_format=lakehouse_file_format()) }}

-- Each patient's current research consent (FHIR Consent with scope research, read from the raw
-- JSON in ehr_resources), keyed by patient_key: the source of the governance `consent` row
-- filter. A patient may have consented, declined or withdrawn several times; the latest
-- decision (dateTime, then meta.lastUpdated) is the one in force. Filters: superseded
-- versions of a resource id, scope other than research (privacy, treatment, ADR directives),
-- status outside active | rejected | inactive (draft, proposed: no decision yet;
-- entered-in-error), earlier decisions of the same patient, rows whose Patient is not in the
-- export, missing id.
with source as (
    select
        id,
        patient_ref,
        raw_json,
        last_updated,
        _ingested_at,
        _record_hash
    from {{ source('ehr', 'resources') }}
    where resource_type = 'Consent'
),

versions as (
    select
        id,
        patient_ref,
        raw_json,
        last_updated,
        row_number() over (
            partition by id
            order by last_updated desc, _ingested_at desc, _record_hash asc
        ) as version_rank
    from source
    where id is not null
),

parsed as (
    select
        id,
        -- The reader resolves Consent.patient into patient_ref; the JSON is the fallback.
        coalesce(
            patient_ref,
            {{ ehr_reference_id(ehr_json_string('raw_json', '$.patient.reference')) }}
        ) as patient_id,
        last_updated,
        {{ ehr_json_string('raw_json', '$.status') }} as consent_status,
        coalesce(
            {{ ehr_json_string('raw_json', '$.scope.coding[0].code') }},
            {{ ehr_json_string('raw_json', '$.scope.coding[1].code') }}
        ) as scope,
        {{ ehr_json_string('raw_json', '$.category[0].coding[0].code') }} as category_code,
        {{ ehr_json_string('raw_json', '$.provision.type') }} as decision,
        {{ ehr_json_string('raw_json', '$.policyRule.coding[0].code') }} as policy_rule,
        {{ ehr_json_string('raw_json', '$.dateTime') }} as date_time_text,
        {{ ehr_json_string('raw_json', '$.provision.period.start') }} as period_start_text,
        {{ ehr_json_string('raw_json', '$.provision.period.end') }} as period_end_text
    from versions
    where version_rank = 1
),

decisions as (
    select
        id,
        patient_id,
        consent_status,
        scope,
        category_code,
        decision,
        policy_rule,
        {{ ehr_parse_instant('date_time_text') }} as decided_at,
        {{ ehr_parse_instant('period_start_text') }} as permitted_from,
        {{ ehr_parse_instant('period_end_text') }} as permitted_until,
        cast(last_updated as timestamp) as last_updated
    from parsed
    where
        scope = 'research'
        and consent_status in ('active', 'rejected', 'inactive')
),

identifiers as (
    select
        fhir_patient_id,
        patient_key
    from {{ ref('stg_ehr__patient_identifiers') }}
),

ranked as (
    select
        identifiers.patient_key,
        decisions.id,
        decisions.consent_status,
        decisions.scope,
        decisions.category_code,
        decisions.decision,
        decisions.policy_rule,
        decisions.decided_at,
        decisions.permitted_from,
        decisions.permitted_until,
        decisions.last_updated,
        count(*) over (partition by identifiers.patient_key) as n_decisions,
        row_number() over (
            partition by identifiers.patient_key
            order by
                coalesce(decisions.decided_at, decisions.last_updated) desc,
                decisions.last_updated desc,
                decisions.id asc
        ) as decision_rank
    from decisions
    inner join identifiers
        on decisions.patient_id = identifiers.fhir_patient_id
)

select
    patient_key,
    id as consent_id,
    consent_status,
    scope,
    category_code,
    decision,
    policy_rule,
    decided_at,
    permitted_from,
    permitted_until,
    last_updated,
    cast(decided_at as date) as decided_on,
    cast(n_decisions as int) as n_decisions,
    -- The one flag the governance consent filter needs: an active consent that permits.
    consent_status = 'active' and coalesce(decision, 'permit') = 'permit' as is_research_permitted
from ranked
where decision_rank = 1
