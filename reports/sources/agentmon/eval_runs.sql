select * from eval_runs
