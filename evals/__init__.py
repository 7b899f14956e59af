"""Benchmark content: suites, datasets and the reference agents (importable as `evals.agents.…`)."""
