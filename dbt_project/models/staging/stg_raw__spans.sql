-- Spans with token counts in OpenTelemetry semantics: input includes cached input, output
-- includes reasoning, total = input + output. Where a source reports a total larger than
-- input + output and no reasoning count explains it, the gap is reasoning left out of the output
-- count (Gemini thinking tokens): reasoning = gap and output = total - input.
with source as (
    select * from {{ source('raw', 'spans') }}
),

gaps as (
    select
        *,
        case
            when total_tokens is not null
                and total_tokens > coalesce(input_tokens, 0) + coalesce(output_tokens, 0)
                and reasoning_tokens is null
            then total_tokens - coalesce(input_tokens, 0) - coalesce(output_tokens, 0)
        end as unreported_reasoning_tokens
    from source
)

select
    trace_id,
    span_id,
    parent_span_id,
    name,
    kind,
    start_time,
    end_time,
    duration_ms,
    status,
    error_type,
    error_message,
    coalesce(agent_id, agent_name) as agent_id,
    agent_name,
    agent_version,
    session_id,
    user_id,
    model,
    provider,
    input_tokens,
    case
        when unreported_reasoning_tokens is not null then total_tokens - coalesce(input_tokens, 0)
        else output_tokens
    end as output_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    coalesce(reasoning_tokens, unreported_reasoning_tokens) as reasoning_tokens,
    cost_usd as provided_cost_usd,
    tool_name,
    coalesce(retry_count, 0) as retry_count,
    attributes,
    -- 'benchmark' for the calls agentmon's own benchmark suites make, else 'telemetry'
    coalesce({{ json_text('attributes', 'agentmon.source') }}, 'telemetry') as telemetry_source,
    resource,
    source_format,
    load_id
from gaps
