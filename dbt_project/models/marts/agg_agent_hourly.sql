-- Grain: agent_id, agent_version, UTC hour (bucket_start).
{{ agent_bucket_aggregate('hour') }}
