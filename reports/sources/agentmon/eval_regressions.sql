select * from eval_regressions
