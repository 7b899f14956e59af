select * from version_comparisons
