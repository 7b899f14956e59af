select * from anomalies
