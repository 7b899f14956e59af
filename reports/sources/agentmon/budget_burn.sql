select * from budget_burn
