{{
    config(
        materialized='incremental',
        unique_key='trace_id',
        incremental_strategy='delete+insert',
    )
}}
-- Run attribution (SPEC §4). Each span gets:
--   run_id: the span_id of its outermost enclosing `agent` span (itself included); in a trace
--           with no agent span, the span_id of its root. Spans outside every agent span of a
--           trace that has agent spans have no run.
--   agent_id / agent_name / agent_version: those of the nearest enclosing agent span (itself
--           included); where there is none, of the nearest ancestor (or itself) that has one.
-- A span whose parent is not in the data (not arrived yet, or outside the retention window) is a
-- root. Incremental: only traces with spans loaded since the last build are recomputed, whole.
{{ with_recursive() }} spans as (
    select * from {{ ref('stg_raw__spans') }}
    {% if is_incremental() %}
    where trace_id in (
        select distinct trace_id
        from {{ ref('stg_raw__spans') }}
        where load_id > (select coalesce(max(trace_load_id), 0) from {{ this }})
            or {{ in_reload_window('start_time') }}
    )
    {% endif %}
),

traces as (
    select
        trace_id,
        max(load_id) as trace_load_id,
        bool_or(kind = 'agent') as has_agent_span
    from spans
    group by trace_id
),

nodes as (
    select
        spans.*,
        parents.span_id is not null as has_parent,
        parents.kind as parent_kind
    from spans
    left join spans as parents
        on parents.trace_id = spans.trace_id
        and parents.span_id = spans.parent_span_id
        and parents.span_id <> spans.span_id
),

{{ span_walk() }},

llm_wrappers as (
    -- an llm span with an llm span below it wraps the real provider call(s): the same call
    -- reported twice by two instrumentations (OpenInference around OpenLLMetry, Langfuse's
    -- GENERATION around the SDK's call). Only the innermost llm spans are LLM calls.
    select distinct trace_id, enclosing_llm_span_id as span_id
    from walk
    where kind = 'llm' and enclosing_llm_span_id is not null
)

select
    spans.trace_id,
    spans.span_id,
    spans.parent_span_id,
    case when traces.has_agent_span then walk.outer_agent_span_id else walk.root_span_id end as run_id,
    walk.root_span_id,
    walk.nearest_agent_span_id,
    walk.depth,
    spans.name,
    spans.kind,
    llm_wrappers.span_id is not null as is_llm_wrapper,
    spans.start_time,
    spans.end_time,
    spans.duration_ms,
    spans.status,
    spans.error_type,
    spans.error_message,
    walk.ctx_agent_id as agent_id,
    walk.ctx_agent_name as agent_name,
    walk.ctx_agent_version as agent_version,
    spans.session_id,
    spans.user_id,
    spans.model,
    spans.provider,
    spans.input_tokens,
    spans.output_tokens,
    spans.cached_input_tokens,
    spans.cache_creation_input_tokens,
    spans.reasoning_tokens,
    spans.provided_cost_usd,
    spans.tool_name,
    spans.retry_count,
    coalesce(spans.telemetry_source = 'benchmark', false) as is_benchmark,
    traces.trace_load_id
from walk
inner join spans
    on spans.trace_id = walk.trace_id
    and spans.span_id = walk.span_id
inner join traces
    on traces.trace_id = walk.trace_id
left join llm_wrappers
    on llm_wrappers.trace_id = walk.trace_id
    and llm_wrappers.span_id = walk.span_id
