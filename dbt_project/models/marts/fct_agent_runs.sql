{{
    config(
        materialized='incremental',
        unique_key='trace_id',
        incremental_strategy='delete+insert',
    )
}}
-- One row per agent run (grain: run_id). A run succeeds unless its own span has status error;
-- errors below it count in error_span_count. Tokens and cost are sums over the run's LLM calls
-- (sub-agents included); cost_is_partial is true when a call had no price.
with spans as (
    select *
    from {{ ref('int_spans_attributed') }}
    where run_id is not null
    {% if is_incremental() %}
        and (
            trace_load_id > (select coalesce(max(trace_load_id), 0) from {{ this }})
            or {{ reloaded_traces() }}
        )
    {% endif %}
),

llm as (
    select
        trace_id,
        run_id,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(reasoning_tokens) as reasoning_tokens,
        sum(cost_usd) as cost_usd,
        bool_or(cost_usd is null) as cost_is_partial
    from {{ ref('fct_llm_calls') }}
    where trace_id in (select trace_id from spans)
    group by trace_id, run_id
),

members as (
    select
        trace_id,
        run_id,
        count(*) filter (where kind = 'llm' and not is_llm_wrapper) as llm_call_count,
        count(*) filter (where kind = 'tool') as tool_call_count,
        count(*) filter (where status = 'error' and span_id <> run_id) as error_span_count,
        sum(retry_count) as retry_count,
        max(session_id) as any_session_id,
        max(user_id) as any_user_id,
        max(trace_load_id) as trace_load_id
    from spans
    group by trace_id, run_id
),

roots as (
    select * from spans where span_id = run_id
)

select
    roots.run_id,
    roots.trace_id,
    roots.agent_id,
    roots.agent_name,
    roots.agent_version,
    coalesce(roots.session_id, members.any_session_id) as session_id,
    coalesce(roots.user_id, members.any_user_id) as user_id,
    roots.start_time as started_at,
    roots.end_time as ended_at,
    roots.duration_ms,
    roots.status,
    roots.status <> 'error' as is_success,
    roots.error_type,
    members.llm_call_count,
    members.tool_call_count,
    members.error_span_count,
    members.retry_count,
    coalesce(llm.input_tokens, 0) as input_tokens,
    coalesce(llm.output_tokens, 0) as output_tokens,
    coalesce(llm.input_tokens, 0) + coalesce(llm.output_tokens, 0) as total_tokens,
    coalesce(llm.cached_input_tokens, 0) as cached_input_tokens,
    coalesce(llm.reasoning_tokens, 0) as reasoning_tokens,
    coalesce(llm.cost_usd, 0) as cost_usd,
    coalesce(llm.cost_is_partial, false) as cost_is_partial,
    roots.is_benchmark,
    members.trace_load_id
from roots
inner join members
    on members.trace_id = roots.trace_id
    and members.run_id = roots.run_id
left join llm
    on llm.trace_id = roots.trace_id
    and llm.run_id = roots.run_id
