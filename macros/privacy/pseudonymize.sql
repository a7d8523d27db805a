{#-
    pseudonymize(expr): the study-wide pseudonymous key of an identifier (e.g. an MRN).

    A keyed hash, sha256(key || ':' || normalised identifier), hex-encoded: the same MRN maps
    to the same key in every modality and every run, and without the key nobody can test
    candidate MRNs against it (an MRN space is small enough to enumerate, so an unkeyed hash
    would be no pseudonym at all). The key never appears in compiled SQL or in the warehouse:
    - DuckDB: the session variable mmlake_pseudonym_key, set on every cursor by the mmlake
      dbt plugin from the environment variable MMLAKE_PSEUDONYM_KEY;
    - Spark: the session conf spark.mmlake.pseudonym_key (profiles.yml, from the same variable),
      substituted by Spark when the statement runs;
    - Databricks: the secret var('pseudonym_secret_key') in scope var('pseudonym_secret_scope').
    `mmlake` creates a random key per lakehouse when the variable is unset
    (mmlake/pseudonym.py). Rotating the key re-keys every patient: rebuild silver and gold.
-#}
{% macro pseudonymize(expr) -%}
    {{ return(adapter.dispatch('pseudonymize', 'multimodal_lakehouse')(expr)) }}
{%- endmacro %}

{% macro duckdb__pseudonymize(expr) -%}
    sha256(
        coalesce(
            nullif(getvariable('mmlake_pseudonym_key'), ''),
            error('MMLAKE_PSEUDONYM_KEY is not set: export it, or run dbt through mmlake')
        ) || ':' || upper(trim({{ expr }}))
    )
{%- endmacro %}

{% macro spark__pseudonymize(expr) -%}
    sha2(
        concat(
            coalesce(
                nullif('${spark.mmlake.pseudonym_key}', ''),
                raise_error('MMLAKE_PSEUDONYM_KEY is not set: export it, or run dbt through mmlake')
            ),
            ':',
            upper(trim({{ expr }}))
        ),
        256
    )
{%- endmacro %}

{% macro databricks__pseudonymize(expr) -%}
    sha2(
        concat(
            secret('{{ var("pseudonym_secret_scope") }}', '{{ var("pseudonym_secret_key") }}'),
            ':',
            upper(trim({{ expr }}))
        ),
        256
    )
{%- endmacro %}
