-- One row per time an agent version went live: activations and rollbacks in the registry, and
-- deployment and rollback events in telemetry. The production version comparison
-- (analytics.version_comparisons) takes these as the moments one version replaced another.
with registry as (
    select
        'registry:' || seq as deployment_id,
        agent_id,
        agent_version,
        previous_version,
        effective_at as deployed_at,
        case when action = 'rollback' then 'rollback' else 'activation' end as action,
        'registry' as source,
        actor
    from {{ ref('stg_registry__audit_log') }}
    where action in ('activate', 'rollback')
),

telemetry as (
    select
        'event:' || event_id as deployment_id,
        agent_id,
        agent_version,
        cast(null as {{ string_type() }}) as previous_version,
        time as deployed_at,
        case when name in ('rollback', 'agent.rolled_back') then 'rollback' else 'deployment' end as action,
        'telemetry' as source,
        cast(null as {{ string_type() }}) as actor
    from {{ ref('fct_events') }}
    where name in ('deployment', 'deploy', 'agent.deployed', 'rollback', 'agent.rolled_back')
        and agent_id is not null
        and agent_version is not null
)

select * from registry
union all
select * from telemetry
