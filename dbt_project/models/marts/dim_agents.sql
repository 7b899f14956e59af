-- One row per agent_id seen in runs or registered. latest_version is the version of the agent's
-- latest run; active_version is the one the registry has active.
with versions as (
    select * from {{ ref('dim_agent_versions') }}
),

runs as (
    select
        agent_id,
        max(agent_name) as agent_name,
        min(started_at) as first_seen_at,
        max(started_at) as last_seen_at,
        count(*) as total_runs,
        {{ arg_max('agent_version', 'started_at') }} as latest_version
    from {{ ref('fct_agent_runs') }}
    where agent_id is not null
    group by agent_id
),

registered as (
    select * from {{ ref('stg_registry__agents') }}
),

active as (
    select agent_id, agent_version as active_version
    from {{ ref('stg_registry__agent_versions') }}
    where status = 'active'
),

agents as (
    select agent_id from runs
    union
    select agent_id from registered
)

select
    agents.agent_id,
    coalesce(registered.agent_name, runs.agent_name, agents.agent_id) as agent_name,
    registered.agent_id is not null as is_registered,
    registered.description,
    registered.owner,
    registered.capabilities,
    registered.registered_at,
    active.active_version,
    runs.first_seen_at,
    runs.last_seen_at,
    runs.latest_version,
    (select count(*) from versions where versions.agent_id = agents.agent_id) as version_count,
    coalesce(runs.total_runs, 0) as total_runs
from agents
left join runs on runs.agent_id = agents.agent_id
left join registered on registered.agent_id = agents.agent_id
left join active on active.agent_id = agents.agent_id
