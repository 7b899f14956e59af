{#- Where DuckDB's SQL and PostgreSQL's differ, the models call one of these macros; dbt picks
    the adapter's version (`duckdb__…`, `postgres__…`, `spark__…`, else `default__…`). Another dbt
    adapter needs only its own versions of these. -#}

{#- The type names of a cast: Spark SQL has no unbounded `varchar` (it needs a length) and no
    `double precision`. -#}
{% macro string_type() -%}
    {{ return(adapter.dispatch('string_type', 'agentmon')()) }}
{%- endmacro %}
{% macro default__string_type() -%}
    varchar
{%- endmacro %}
{% macro spark__string_type() -%}
    string
{%- endmacro %}

{% macro double_type() -%}
    {{ return(adapter.dispatch('double_type', 'agentmon')()) }}
{%- endmacro %}
{% macro default__double_type() -%}
    double precision
{%- endmacro %}
{% macro spark__double_type() -%}
    double
{%- endmacro %}

{#- A timestamp literal with time zone (an instant); Spark's `timestamp` is one (TIMESTAMP_LTZ). -#}
{% macro timestamptz_literal(value) -%}
    {{ return(adapter.dispatch('timestamptz_literal', 'agentmon')(value)) }}
{%- endmacro %}
{% macro default__timestamptz_literal(value) -%}
    cast('{{ value }}' as timestamp with time zone)
{%- endmacro %}
{% macro spark__timestamptz_literal(value) -%}
    cast('{{ value }}' as timestamp)
{%- endmacro %}

{#- The continuous q-quantile (linear interpolation) of a column, as an aggregate. -#}
{% macro percentile(column, q) -%}
    {{ return(adapter.dispatch('percentile', 'agentmon')(column, q)) }}
{%- endmacro %}
{% macro duckdb__percentile(column, q) -%}
    quantile_cont({{ column }}, {{ q }})
{%- endmacro %}
{% macro default__percentile(column, q) -%}
    percentile_cont({{ q }}) within group (order by {{ column }})
{%- endmacro %}
{#- Spark's percentile() interpolates linearly, as percentile_cont does (Spark 3.0+; cast: a
    column of integers is accepted too). -#}
{% macro spark__percentile(column, q) -%}
    percentile(cast({{ column }} as double), {{ q }})
{%- endmacro %}

{#- The text of a top-level key of a JSON object column (null when absent). -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'agentmon')(column, key)) }}
{%- endmacro %}
{% macro duckdb__json_text(column, key) -%}
    ({{ column }} ->> '$."{{ key }}"')
{%- endmacro %}
{% macro default__json_text(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}
{#- JSON is kept as a string; the bracket path takes keys with dots (agentmon.source). -#}
{% macro spark__json_text(column, key) -%}
    get_json_object({{ column }}, '$[\'{{ key }}\']')
{%- endmacro %}

{#- Microseconds since 1970-01-01 UTC of a timestamp, as a whole number: a key that every engine
    writes the same way (a timestamp's text differs: DuckDB and PostgreSQL add "+00", Spark does not). -#}
{% macro epoch_microseconds(column) -%}
    {{ return(adapter.dispatch('epoch_microseconds', 'agentmon')(column)) }}
{%- endmacro %}
{% macro duckdb__epoch_microseconds(column) -%}
    epoch_us({{ column }})
{%- endmacro %}
{% macro spark__epoch_microseconds(column) -%}
    unix_micros({{ column }})
{%- endmacro %}
{% macro default__epoch_microseconds(column) -%}
    cast(floor(extract(epoch from {{ column }}) * 1000000) as bigint)
{%- endmacro %}

{#- Whole milliseconds from one timestamp to a later one. -#}
{% macro milliseconds_between(start, end) -%}
    {{ return(adapter.dispatch('milliseconds_between', 'agentmon')(start, end)) }}
{%- endmacro %}
{% macro duckdb__milliseconds_between(start, end) -%}
    (epoch_ms({{ end }}) - epoch_ms({{ start }}))
{%- endmacro %}
{% macro spark__milliseconds_between(start, end) -%}
    (unix_millis({{ end }}) - unix_millis({{ start }}))
{%- endmacro %}
{% macro default__milliseconds_between(start, end) -%}
    cast(floor(extract(epoch from {{ end }}) * 1000) - floor(extract(epoch from {{ start }}) * 1000) as bigint)
{%- endmacro %}

{#- The value of the row with the largest `key` (rows with a null key ignored), as an aggregate.
    Ties are broken by the larger value, so every adapter picks the same row. -#}
{% macro arg_max(value, key) -%}
    {{ return(adapter.dispatch('arg_max', 'agentmon')(value, key)) }}
{%- endmacro %}
{% macro duckdb__arg_max(value, key) -%}
    arg_max({{ value }}, ({{ key }}, {{ value }})) filter (where {{ key }} is not null)
{%- endmacro %}
{#- max_by over (key, value): the struct orders by key, then by value (a null value is the
    smallest, as `desc nulls last` above). -#}
{% macro spark__arg_max(value, key) -%}
    max_by({{ value }}, struct({{ key }}, {{ value }})) filter (where {{ key }} is not null)
{%- endmacro %}
{% macro default__arg_max(value, key) -%}
    (array_agg({{ value }} order by {{ key }} desc, {{ value }} desc nulls last) filter (where {{ key }} is not null))[1]
{%- endmacro %}

{#- A double rounded to `digits` decimals, still a double. -#}
{% macro round_double(expression, digits) -%}
    {{ return(adapter.dispatch('round_double', 'agentmon')(expression, digits)) }}
{%- endmacro %}
{% macro duckdb__round_double(expression, digits) -%}
    round({{ expression }}, {{ digits }})
{%- endmacro %}
{#- Spark's round() of a double is a double (HALF_UP); `numeric` would be decimal(10,0) there. -#}
{% macro spark__round_double(expression, digits) -%}
    round({{ expression }}, {{ digits }})
{%- endmacro %}
{% macro default__round_double(expression, digits) -%}
    cast(round(cast({{ expression }} as numeric), {{ digits }}) as double precision)
{%- endmacro %}

{#- `from <left>` joined with, for each row, the latest row of `right` whose `right_time` is at or
    before `left_time` and whose `right_key` equals `left_key` (an as-of join; none: nulls). -#}
{% macro asof_left_join(left, right, alias, left_key, right_key, left_time, right_time) -%}
    {{ return(adapter.dispatch('asof_left_join', 'agentmon')(left, right, alias, left_key, right_key, left_time, right_time)) }}
{%- endmacro %}
{% macro duckdb__asof_left_join(left, right, alias, left_key, right_key, left_time, right_time) -%}
    from {{ left }}
    asof left join {{ right }} as {{ alias }}
        on {{ left_key }} = {{ alias }}.{{ right_key }}
        and {{ left_time }} >= {{ alias }}.{{ right_time }}
{%- endmacro %}
{% macro default__asof_left_join(left, right, alias, left_key, right_key, left_time, right_time) -%}
    from {{ left }}
    left join lateral (
        select * from {{ right }} as candidates
        where candidates.{{ right_key }} = {{ left_key }}
            and candidates.{{ right_time }} <= {{ left_time }}
        order by candidates.{{ right_time }} desc
        limit 1
    ) as {{ alias }} on true
{%- endmacro %}
{#- Spark has no `limit` in a correlated (lateral) subquery: each price row gets the start of the
    next one of its key (lead), and a left row joins the row whose [start, next start) holds its
    time. Rows of `right` with the same key and time: only the last of lead's order matches. -#}
{% macro spark__asof_left_join(left, right, alias, left_key, right_key, left_time, right_time) -%}
    from {{ left }}
    left join (
        select
            *,
            lead({{ right_time }}) over (partition by {{ right_key }} order by {{ right_time }}) as _asof_valid_to
        from {{ right }}
    ) as {{ alias }}
        on {{ left_key }} = {{ alias }}.{{ right_key }}
        and {{ left_time }} >= {{ alias }}.{{ right_time }}
        and ({{ alias }}._asof_valid_to is null or {{ left_time }} < {{ alias }}._asof_valid_to)
{%- endmacro %}
