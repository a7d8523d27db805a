-- One conversion per (LOINC, unit) in the lab_units seed: a duplicate would fan out
-- observations in stg_ehr__observations. Returns the duplicated pairs.
select
    loinc,
    unit,
    count(*) as n_rows
from {{ ref('lab_units') }}
group by loinc, unit
having count(*) > 1
