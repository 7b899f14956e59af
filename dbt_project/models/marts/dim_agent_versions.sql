-- One row per agent_id and agent_version seen in runs or deployment events. deployed_at is the
-- first `deployment` event for the version, else the version's first run.
with runs as (
    select
        agent_id,
        agent_version,
        min(started_at) as first_seen_at,
        max(started_at) as last_seen_at,
        count(*) as total_runs,
        count(*) filter (where is_success) / count(*) as success_rate,
        quantile_cont(duration_ms, 0.5) as p50_duration_ms,
        quantile_cont(duration_ms, 0.95) as p95_duration_ms,
        sum(cost_usd) as cost_usd
    from {{ ref('fct_agent_runs') }}
    where agent_id is not null
    group by agent_id, agent_version
),

deployments as (
    select agent_id, agent_version, min(time) as deployed_at
    from {{ ref('fct_events') }}
    where name in ('deployment', 'deploy', 'agent.deployed') and agent_id is not null
    group by agent_id, agent_version
)

select
    coalesce(runs.agent_id, deployments.agent_id) as agent_id,
    coalesce(runs.agent_version, deployments.agent_version) as agent_version,
    coalesce(deployments.deployed_at, runs.first_seen_at) as deployed_at,
    runs.first_seen_at,
    runs.last_seen_at,
    coalesce(runs.total_runs, 0) as total_runs,
    runs.success_rate,
    runs.p50_duration_ms,
    runs.p95_duration_ms,
    coalesce(runs.cost_usd, 0) as cost_usd
from runs
full outer join deployments
    on deployments.agent_id = runs.agent_id
    and deployments.agent_version is not distinct from runs.agent_version
