{{
    config(
        materialized='incremental',
        unique_key='trace_id',
        incremental_strategy='delete+insert',
    )
}}
-- One row per LLM call: an `llm` span with no llm span below it (see is_llm_wrapper). Cost: a
-- provided cost_usd wins; otherwise the latest price in effect at the call's start; a model with no
-- price has a null cost and cost_source = 'unknown_model'.
-- cost = (input - cached - cache writes) * input price + cached * cached price
--        + cache writes * write price + output * output price   (prices per million tokens)
with calls as (
    select *
    from {{ ref('int_spans_attributed') }}
    where kind = 'llm' and not is_llm_wrapper
    {% if is_incremental() %}
        and (
            trace_load_id > (select coalesce(max(trace_load_id), 0) from {{ this }})
            or {{ reloaded_traces() }}
        )
    {% endif %}
),

priced as (
    select
        calls.*,
        prices.model as priced_model,
        prices.input_usd_per_mtok,
        coalesce(prices.cached_input_usd_per_mtok, prices.input_usd_per_mtok) as cached_input_usd_per_mtok,
        coalesce(prices.cache_write_usd_per_mtok, prices.input_usd_per_mtok) as cache_write_usd_per_mtok,
        prices.output_usd_per_mtok
    {{ asof_left_join(
        'calls', ref('model_prices'), 'prices', 'calls.model', 'model', 'calls.start_time', 'effective_from'
    ) }}
),

tokens as (
    select
        *,
        coalesce(input_tokens, 0) as input_tokens_n,
        coalesce(output_tokens, 0) as output_tokens_n,
        coalesce(cached_input_tokens, 0) as cached_n,
        coalesce(cache_creation_input_tokens, 0) as cache_write_n
    from priced
)

select
    span_id,
    trace_id,
    run_id,
    agent_id,
    agent_version,
    model,
    provider,
    start_time as started_at,
    duration_ms,
    input_tokens_n as input_tokens,
    output_tokens_n as output_tokens,
    cached_n as cached_input_tokens,
    cache_write_n as cache_creation_input_tokens,
    coalesce(reasoning_tokens, 0) as reasoning_tokens,
    input_tokens_n + output_tokens_n as total_tokens,
    case
        when provided_cost_usd is not null then provided_cost_usd
        when priced_model is not null then (
            greatest(input_tokens_n - cached_n - cache_write_n, 0) * input_usd_per_mtok
            + cached_n * cached_input_usd_per_mtok
            + cache_write_n * cache_write_usd_per_mtok
            + output_tokens_n * output_usd_per_mtok
        ) / 1e6
    end as cost_usd,
    case
        when provided_cost_usd is not null then 'provided'
        when priced_model is not null then 'computed'
        else 'unknown_model'
    end as cost_source,
    status,
    error_type,
    is_benchmark,
    trace_load_id
from tokens
