select * from agent_hourly
