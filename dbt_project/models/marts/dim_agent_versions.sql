-- One row per agent_id and agent_version seen in runs, deployments or the registry. deployed_at is
-- the first time the version went live (fct_deployments), else its first run. Versions seen in
-- telemetry but never registered have registry_status 'unregistered'.
with runs as (
    select
        agent_id,
        agent_version,
        min(started_at) as first_seen_at,
        max(started_at) as last_seen_at,
        count(*) as total_runs,
        count(*) filter (where not is_benchmark) as production_runs,
        cast(count(*) filter (where is_success) as {{ double_type() }}) / count(*) as success_rate,
        {{ percentile('duration_ms', 0.5) }} as p50_duration_ms,
        {{ percentile('duration_ms', 0.95) }} as p95_duration_ms,
        sum(cost_usd) as cost_usd
    from {{ ref('fct_agent_runs') }}
    where agent_id is not null
    group by agent_id, agent_version
),

deployments as (
    select
        agent_id,
        agent_version,
        min(deployed_at) as first_deployed_at,
        max(deployed_at) as last_deployed_at,
        count(*) as deployments
    from {{ ref('fct_deployments') }}
    group by agent_id, agent_version
),

registered as (
    select * from {{ ref('stg_registry__agent_versions') }}
),

versions as (
    select agent_id, agent_version from runs
    union
    select agent_id, agent_version from deployments
    union
    select agent_id, agent_version from registered
)

select
    versions.agent_id,
    versions.agent_version,
    coalesce(deployments.first_deployed_at, runs.first_seen_at) as deployed_at,
    deployments.last_deployed_at,
    coalesce(deployments.deployments, 0) as deployments,
    registered.agent_version is not null as is_registered,
    coalesce(registered.status, 'unregistered') as registry_status,
    registered.description,
    registered.config,
    registered.registered_at,
    runs.first_seen_at,
    runs.last_seen_at,
    coalesce(runs.total_runs, 0) as total_runs,
    coalesce(runs.production_runs, 0) as production_runs,
    runs.success_rate,
    runs.p50_duration_ms,
    runs.p95_duration_ms,
    coalesce(runs.cost_usd, 0) as cost_usd
from versions
left join runs
    on runs.agent_id = versions.agent_id
    and runs.agent_version is not distinct from versions.agent_version
left join deployments
    on deployments.agent_id = versions.agent_id
    and deployments.agent_version is not distinct from versions.agent_version
left join registered
    on registered.agent_id = versions.agent_id
    and registered.agent_version is not distinct from versions.agent_version
