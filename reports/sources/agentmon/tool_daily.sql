select * from tool_daily
