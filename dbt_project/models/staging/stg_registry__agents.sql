select
    agent_id,
    name as agent_name,
    description,
    owner,
    capabilities,
    registered_at,
    updated_at
from {{ source('registry', 'agents') }}
