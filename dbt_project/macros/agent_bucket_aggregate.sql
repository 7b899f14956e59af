{#- Per agent_id, agent_version and UTC bucket: run counts, rates, latency percentiles, tokens, cost.
    Shared by agg_agent_hourly and agg_agent_daily. -#}
{% macro agent_bucket_aggregate(grain) %}
select
    agent_id,
    agent_version,
    date_trunc('{{ grain }}', started_at) as bucket_start,
    count(*) as runs,
    count(*) filter (where is_success) as successes,
    count(*) filter (where not is_success) as failures,
    cast(count(*) filter (where is_success) as {{ double_type() }}) / count(*) as success_rate,
    cast(count(*) filter (where not is_success) as {{ double_type() }}) / count(*) as error_rate,
    cast(count(*) filter (where retry_count > 0) as {{ double_type() }}) / count(*) as retry_rate,
    {{ percentile('duration_ms', 0.5) }} as p50_duration_ms,
    {{ percentile('duration_ms', 0.95) }} as p95_duration_ms,
    {{ percentile('duration_ms', 0.99) }} as p99_duration_ms,
    avg(duration_ms) as avg_duration_ms,
    sum(llm_call_count) as llm_calls,
    sum(tool_call_count) as tool_calls,
    sum(input_tokens) as input_tokens,
    sum(output_tokens) as output_tokens,
    sum(total_tokens) as total_tokens,
    sum(cost_usd) as cost_usd,
    bool_or(cost_is_partial) as cost_is_partial,
    max(trace_load_id) as last_trace_load_id
from {{ ref('fct_agent_runs') }}
where not is_benchmark  -- production traffic only; benchmark runs are in fct_eval_results
group by 1, 2, 3
{% endmacro %}
