select * from errors_daily
