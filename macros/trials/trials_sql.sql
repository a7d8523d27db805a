{#-
    Helpers of the trial-eligibility models (models/gold/trials). Criteria are data
    (seeds/trials/trial_criteria.csv): a criterion names what it looks at (`code`), an
    `operator` and a `value`; these macros turn the operator into SQL that DuckDB and Spark
    both run, so no engine-specific branch is needed.
-#}

{#- True when `item` is one of the ';'-separated entries of `value_list` (no spaces around ';').
    instr() exists with the same meaning on DuckDB and Spark; a null item gives null. -#}
{% macro trials_in_list(value_list, item) -%}
    (instr(concat(';', {{ value_list }}, ';'), concat(';', {{ item }}, ';')) > 0)
{%- endmacro %}

{#- `lhs <operator> value` for a numeric criterion (stage, ECOG, labs). An unknown operator or
    a null left-hand side gives null, which the model reports as status 'unknown'. -#}
{% macro trials_compare(lhs, operator, value) -%}
    case {{ operator }}
        when '>=' then {{ lhs }} >= cast({{ value }} as double)
        when '>' then {{ lhs }} > cast({{ value }} as double)
        when '<=' then {{ lhs }} <= cast({{ value }} as double)
        when '<' then {{ lhs }} < cast({{ value }} as double)
        when '=' then {{ lhs }} = cast({{ value }} as double)
    end
{%- endmacro %}

{#- ECOG 0-5 of an observation row (alias `obs`), exactly as features_clinical reads it
    (macros/ehr/ecog_score.sql); null when none is given. -#}
{% macro trials_ecog_score(obs) -%}
    cast({{ ecog_score(obs) }} as double)
{%- endmacro %}

{#- The record that decides a criterion, joined to `screened`: `hits` holds the matching records
    of each patient and criterion ranked by `hit_rank`, 1 being the one reported as evidence.
    A left join, so a criterion without a matching record keeps its row (and null evidence). -#}
{% macro trials_deciding_record(hits, alias) -%}
    left join {{ hits }} as {{ alias }}
        on
            screened.patient_key = {{ alias }}.patient_key
            and screened.criterion_id = {{ alias }}.criterion_id
            and {{ alias }}.hit_rank = 1
{%- endmacro %}
