select * from eval_scores
