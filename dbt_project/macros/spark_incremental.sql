{#- dbt-spark knows append, insert_overwrite, merge (Delta, Iceberg, Hudi only) and microbatch.
    The models here use delete+insert; on Spark's plain parquet tables (no DELETE, no MERGE; the
    Delta/Iceberg jars are not on a pip-installed pyspark) it is done by a rewrite: the rows of the
    target whose key is not in the new rows, plus the new rows, into `<target>__dbt_di`, then
    `insert overwrite` of the target from it (Spark refuses to overwrite a table it reads in the
    same statement). `<target>__dbt_di` is dropped at the start of the next such run. The whole
    table is rewritten each run: correct, not cheap. These override dbt-spark's macros of the same
    name (the root project's macros come first); they are only called by dbt-spark. -#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
  {% if raw_strategy == 'delete+insert' %}
    {% do return(raw_strategy) %}
  {% endif %}
  {% do return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) %}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
  {%- if strategy == 'delete+insert' -%}
    {{ agentmon_spark_delete_insert_sql(source, target, unique_key) }}
  {%- else -%}
    {{ dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) }}
  {%- endif -%}
{% endmacro %}

{% macro agentmon_spark_delete_insert_sql(source, target, unique_key) %}
  {%- set keys = [unique_key] if unique_key is string else unique_key -%}
  {%- set rewrite = target.incorporate(path={"identifier": target.identifier ~ '__dbt_di'}) -%}
  {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
  {% do run_query('drop table if exists ' ~ rewrite) %}
  {% call statement('agentmon_delete_insert_rewrite') %}
    create table {{ rewrite }} using parquet as
    select {{ columns }} from {{ target }} as dbt_internal_dest
    left anti join {{ source }} as dbt_internal_source
        on {% for key in keys %}dbt_internal_dest.{{ key }} = dbt_internal_source.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    union all
    select {{ columns }} from {{ source }}
  {% endcall %}
  insert overwrite table {{ target }} select {{ columns }} from {{ rewrite }}
{% endmacro %}
