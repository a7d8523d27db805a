{#-
    Seeds on Spark with values that contain quotes or backslashes.

    dbt-spark's session connection substitutes seed values into the INSERT as '<value>'
    without escaping, so a lexicon entry like "n't" or a regex like \b...\b breaks the
    statement (or silently changes the value). This override writes each value as a properly
    escaped Spark string literal instead of a binding. It is reached through the `dispatch`
    search order in dbt_project.yml; Databricks keeps its adapter's own implementation, which
    binds parameters correctly.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set rows = [] -%}
        {%- for row in chunk -%}
            {%- set values = [] -%}
            {%- for value in row -%}
                {%- set col_name = agate_table.column_names[loop.index0] -%}
                {%- set type = column_override.get(
                    col_name, adapter.convert_type(agate_table, loop.index0)
                ) -%}
                {%- if value is none -%}
                    {%- do values.append('cast(null as ' ~ type ~ ')') -%}
                {%- else -%}
                    {%- set literal = (value | string)
                        | replace('\\', '\\\\') | replace("'", "\\'") -%}
                    {%- do values.append("cast('" ~ literal ~ "' as " ~ type ~ ")") -%}
                {%- endif -%}
            {%- endfor -%}
            {%- do rows.append('(' ~ values | join(', ') ~ ')') -%}
        {%- endfor -%}
        {%- set sql = 'insert into ' ~ this.render() ~ ' values ' ~ rows | join(', ') -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

{% macro databricks__load_csv_rows(model, agate_table) %}
    {{ return(dbt_databricks.databricks__load_csv_rows(model, agate_table)) }}
{% endmacro %}
