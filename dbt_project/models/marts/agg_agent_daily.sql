{{
    config(
        materialized='incremental',
        unique_key=['bucket_start'],
        incremental_strategy='delete+insert',
        full_refresh=false,
        on_schema_change='append_new_columns',
    )
}}
-- Grain: agent_id, agent_version, UTC day (bucket_start).
-- An incremental run recomputes every agent of each day that received new runs, so it replaces
-- those days whole (unique_key bucket_start): a key with agent_version would never match the
-- rows of runs without a version (null = null is not true) and add them a second time.
-- Kept when the detail is pruned (retention): only the days that received new runs are
-- recomputed, and a full refresh does not rebuild this model (full_refresh = false), so the
-- days whose runs were pruned keep their numbers.
with aggregated as (
    {{ agent_bucket_aggregate('day') }}
)

select *
from aggregated
{% if is_incremental() %}
where bucket_start in (
    select distinct date_trunc('day', started_at)
    from {{ ref('fct_agent_runs') }}
    where
        trace_load_id > (select coalesce(max(last_trace_load_id), 0) from {{ this }})
        -- a reloaded day that still has its runs (a pruned day keeps its numbers)
        or {{ in_reload_window('started_at') }}
)
{% endif %}
