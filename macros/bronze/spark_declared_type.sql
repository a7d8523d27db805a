{#-
    A source column's declared `data_type` (DuckDB syntax, the one the bronze YAMLs use) as a
    Spark SQL type, for bronze tables that were never landed on the spark target.

    Bronze YAMLs declare their columns once, in the syntax of the default engine; the spark
    target needs the same empty relation when a modality is absent (a cohort without imaging),
    and Spark cannot infer a schema from a folder that holds no files. Covered: the scalar
    types bronze uses, `T[]` arrays, `MAP(K, V)` and flat `STRUCT(name T, ...)`; anything else
    stops the build naming the type, rather than registering a table with a wrong schema.
-#}
{% macro spark_declared_type(declared) -%}
    {%- set text = declared | trim -%}
    {%- set lowered = text | lower -%}
    {%- set scalars = {
        'varchar': 'string', 'string': 'string', 'text': 'string',
        'integer': 'int', 'int': 'int', 'bigint': 'bigint', 'smallint': 'smallint',
        'double': 'double', 'float': 'float', 'real': 'float', 'boolean': 'boolean',
        'date': 'date', 'timestamptz': 'timestamp', 'timestamp with time zone': 'timestamp',
        'timestamp': 'timestamp_ntz', 'blob': 'binary'
    } -%}
    {%- if lowered.endswith('[]') -%}
        {{ return('array<' ~ spark_declared_type(text[:-2]) ~ '>') }}
    {%- elif lowered in scalars -%}
        {{ return(scalars[lowered]) }}
    {%- elif lowered.startswith('map(') and lowered.endswith(')') -%}
        {%- set parts = split_top_level(text[4:-1]) -%}
        {{ return('map<' ~ spark_declared_type(parts[0]) ~ ', ' ~ spark_declared_type(parts[1]) ~ '>') }}
    {%- elif lowered.startswith('struct(') and lowered.endswith(')') -%}
        {%- set fields = [] -%}
        {%- for field in split_top_level(text[7:-1]) -%}
            {%- set name_and_type = (field | trim).split(' ', 1) -%}
            {%- do fields.append(
                '`' ~ name_and_type[0].strip('"') ~ '`: ' ~ spark_declared_type(name_and_type[1])
            ) -%}
        {%- endfor -%}
        {{ return('struct<' ~ fields | join(', ') ~ '>') }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "spark_declared_type: no Spark equivalent for declared type '" ~ declared ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- `a, b(c, d), e` -> ['a', 'b(c, d)', 'e']: commas inside parentheses do not split. -#}
{% macro split_top_level(text) -%}
    {%- set state = namespace(depth=0, current='') -%}
    {%- set parts = [] -%}
    {%- for char in text -%}
        {%- if char == ',' and state.depth == 0 -%}
            {%- do parts.append(state.current | trim) -%}
            {%- set state.current = '' -%}
        {%- else -%}
            {%- if char == '(' -%}{%- set state.depth = state.depth + 1 -%}{%- endif -%}
            {%- if char == ')' -%}{%- set state.depth = state.depth - 1 -%}{%- endif -%}
            {%- set state.current = state.current ~ char -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do parts.append(state.current | trim) -%}
    {{ return(parts) }}
{%- endmacro %}
