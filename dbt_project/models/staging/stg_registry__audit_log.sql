select
    seq,
    logged_at,
    effective_at,
    actor,
    action,
    agent_id,
    agent_version,
    previous_version,
    detail
from {{ source('registry', 'audit_log') }}
