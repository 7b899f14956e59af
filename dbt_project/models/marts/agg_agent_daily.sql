-- Grain: agent_id, agent_version, UTC day (bucket_start).
{{ agent_bucket_aggregate('day') }}
