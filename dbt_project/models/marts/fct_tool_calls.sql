{{
    config(
        materialized='incremental',
        unique_key='trace_id',
        incremental_strategy='delete+insert',
    )
}}
-- One row per `tool` span, with the run and agent that called it.
select
    span_id,
    trace_id,
    run_id,
    agent_id,
    agent_version,
    coalesce(tool_name, name) as tool_name,
    start_time as started_at,
    duration_ms,
    status,
    error_type,
    trace_load_id
from {{ ref('int_spans_attributed') }}
where kind = 'tool'
{% if is_incremental() %}
    and (
        trace_load_id > (select coalesce(max(trace_load_id), 0) from {{ this }})
        or {{ reloaded_traces() }}
    )
{% endif %}
