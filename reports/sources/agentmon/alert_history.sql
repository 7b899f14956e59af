select * from alert_history
