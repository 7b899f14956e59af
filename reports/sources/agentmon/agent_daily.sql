select * from agent_daily
