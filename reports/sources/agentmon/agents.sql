select * from agents
