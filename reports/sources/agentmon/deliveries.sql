select * from deliveries
