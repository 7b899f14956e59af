select * from deployments
