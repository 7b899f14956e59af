-- One row per agent_id seen in runs. latest_version is the version of the agent's latest run.
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
        arg_max(agent_version, started_at) as latest_version
    from {{ ref('fct_agent_runs') }}
    where agent_id is not null
    group by agent_id
)

select
    runs.agent_id,
    coalesce(runs.agent_name, runs.agent_id) as agent_name,
    runs.first_seen_at,
    runs.last_seen_at,
    runs.latest_version,
    (select count(*) from versions where versions.agent_id = runs.agent_id) as version_count,
    runs.total_runs
from runs
