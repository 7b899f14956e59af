select * from agent_versions
