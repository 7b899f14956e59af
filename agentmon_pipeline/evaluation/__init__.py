"""Benchmarks of agent versions: suites, runner, evaluators, paired statistics, comparisons.

Plain Python, no Dagster: the assets in `defs/evals/`, the CLI and users' scripts call it alike.
"""

from agentmon_pipeline.evaluation.api import (
    BenchmarkResults,
    BenchmarkSuite,
    PerformanceEvaluator,
    QualityEvaluator,
    TestCase,
)
from agentmon_pipeline.evaluation.compare import AgentComparator, ResultAggregator
from agentmon_pipeline.evaluation.regression import RegressionDetector

__all__ = [
    "AgentComparator", "BenchmarkResults", "BenchmarkSuite", "PerformanceEvaluator", "QualityEvaluator",
    "RegressionDetector", "ResultAggregator", "TestCase",
]  # fmt: skip
