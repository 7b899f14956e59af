select
    event_id,
    name,
    time,
    trace_id,
    span_id,
    coalesce(agent_id, {{ json_text('attributes', 'agent_id') }}) as agent_id,
    coalesce(
        agent_version,
        {{ json_text('attributes', 'agent_version') }},
        {{ json_text('attributes', 'version') }}
    ) as agent_version,
    attributes,
    load_id
from {{ source('raw', 'events') }}
