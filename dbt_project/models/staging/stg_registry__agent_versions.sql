select
    agent_id,
    agent_version,
    description,
    config,
    status,
    registered_at,
    deployed_at
from {{ source('registry', 'agent_versions') }}
