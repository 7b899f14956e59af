select * from forecasts
