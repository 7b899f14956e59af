select
    event_id,
    name,
    time,
    trace_id,
    span_id,
    coalesce(agent_id, attributes ->> '$.agent_id') as agent_id,
    coalesce(agent_version, attributes ->> '$.agent_version', attributes ->> '$.version') as agent_version,
    attributes,
    load_id
from {{ source('raw', 'events') }}
