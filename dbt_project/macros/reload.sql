{#- A reload of days (`agentmon backfill --from --to`, a backfill from the Dagster UI): the vars
    reload_from and reload_to (timestamps, UTC, the end excluded) name them, and the incremental
    models rebuild the rows of those days as well as those of new loads. Without them, nothing
    is reloaded (`false`). -#}
{% macro in_reload_window(column) -%}
    {%- if var('reload_from', none) is not none -%}
        ({{ column }} >= {{ timestamptz_literal(var('reload_from')) }}
         and {{ column }} < {{ timestamptz_literal(var('reload_to')) }})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- The traces to rebuild in a reload: those with a span that starts in the window. -#}
{% macro reloaded_traces() -%}
    {%- if var('reload_from', none) is not none -%}
        trace_id in (
            select trace_id from {{ ref('int_spans_attributed') }}
            where {{ in_reload_window('start_time') }}
        )
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}
