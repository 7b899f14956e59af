select * from llm_daily
