"""The seed document's Python API, over the same library the YAML suites use:

    suite = BenchmarkSuite(agent=my_agent, versions=["1.0", "1.1"])
    suite.add_evaluator("quality", QualityEvaluator())
    suite.add_evaluator("performance", PerformanceEvaluator())
    suite.add_test_case(TestCase(test_id="t1", input_data="What is AI?", expected_output="..."))
    results = suite.run()
    results.summaries      # per version and evaluator: n, mean, pass rate, 95% CIs
    results.comparisons    # every candidate against the first version, with verdicts

A script and a YAML suite with the same cases and evaluators give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation.compare import AgentComparator, ResultAggregator, to_csv, to_json
from agentmon_pipeline.evaluation.evaluators import BUILTIN, Call, Evaluator, resolve
from agentmon_pipeline.evaluation.regression import MetricComparison
from agentmon_pipeline.evaluation.runner import CallRecord, SuiteRun, run_suite, score_calls
from agentmon_pipeline.evaluation.suite import Case, EvaluatorSpec, RegressionPolicy, Suite


@dataclass
class TestCase:
    test_id: str
    input_data: Any
    expected_output: Any = None
    actual_output: Any = None  # a recorded output: scored as is when the suite has no agent
    latency_ms: float | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    cluster: str | None = None  # cases of one cluster are judged together (cluster-robust errors)

    __test__ = False  # not a pytest test class


class _EvaluatorGroup:
    """Several named evaluators added under one name (`quality.token_f1`, ...)."""

    def __init__(self, metrics: tuple[str, ...], thresholds: dict[str, float] | None = None):
        unknown = [m for m in metrics if m not in BUILTIN and m != "llm_judge"]
        if unknown:
            raise UserError(f"unknown metric {unknown[0]!r}; built-in: {', '.join(sorted(BUILTIN))}")
        self.metrics = metrics
        self.thresholds = thresholds or {}

    def specs(self, prefix: str) -> list[EvaluatorSpec]:
        out = []
        for metric in self.metrics:
            evaluator = resolve(metric)
            threshold = self.thresholds.get(metric, evaluator.default_threshold)
            out.append(EvaluatorSpec(f"{prefix}.{metric}", evaluator, threshold))
        return out


class QualityEvaluator(_EvaluatorGroup):
    """Accuracy (exact and normalized match), overlap (token F1, ROUGE-L) and toxicity."""

    def __init__(
        self,
        metrics: tuple[str, ...] = ("exact_match", "normalized_match", "token_f1", "rouge_l", "toxicity"),
        thresholds: dict[str, float] | None = None,
    ):
        super().__init__(metrics, thresholds)


class PerformanceEvaluator(_EvaluatorGroup):
    """Latency, errors, tokens and cost of each call."""

    def __init__(
        self,
        metrics: tuple[str, ...] = ("latency_ms", "error", "tokens", "cost_usd"),
        thresholds: dict[str, float] | None = None,
    ):
        super().__init__(metrics, thresholds)


@dataclass
class BenchmarkResults:
    run: SuiteRun
    summaries: list[dict]
    comparisons: list[MetricComparison]
    leaderboard: list[dict]

    @property
    def results(self) -> pl.DataFrame:
        return self.run.results

    @property
    def regressed(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.verdict == "regressed"]

    def export(self, path: str | Path, what: str = "comparisons") -> Path:
        """Write `comparisons`, `summaries`, `leaderboard` or `results` as .csv or .json."""
        rows = {"comparisons": self.comparisons, "summaries": self.summaries, "leaderboard": self.leaderboard,
                "results": self.results.to_dicts()}[what]  # fmt: skip
        path = Path(path)
        path.write_text(to_json(rows) if path.suffix == ".json" else to_csv(rows), encoding="utf-8")
        return path


class BenchmarkSuite:
    def __init__(
        self,
        name: str = "benchmark",
        agent: Callable[..., Any] | str | None = None,
        versions: list[str] | None = None,
        repeats: int = 1,
        timeout_s: float = 30.0,
        concurrency: int = 4,
        regression: RegressionPolicy | None = None,
    ):
        self.name, self.agent = name, agent
        self.versions = versions or ["current"]
        self.repeats, self.timeout_s, self.concurrency = repeats, timeout_s, concurrency
        self.regression = regression or RegressionPolicy()
        self.evaluators: list[EvaluatorSpec] = []
        self.test_cases: list[TestCase] = []

    def add_evaluator(
        self, name: str, evaluator: _EvaluatorGroup | Evaluator | Callable, threshold: float | None = None
    ) -> None:
        if isinstance(evaluator, _EvaluatorGroup):
            self.evaluators.extend(evaluator.specs(name))
            return
        if not isinstance(evaluator, Evaluator):
            evaluator = Evaluator(
                name, evaluator, higher_is_better=getattr(evaluator, "higher_is_better", True)
            )
        self.evaluators.append(
            EvaluatorSpec(
                name, evaluator, threshold if threshold is not None else evaluator.default_threshold
            )
        )

    def add_test_case(self, case: TestCase) -> None:
        self.test_cases.append(case)

    def _suite(self) -> Suite:
        if not self.evaluators:
            raise UserError("add an evaluator first: suite.add_evaluator('quality', QualityEvaluator())")
        if not self.test_cases:
            raise UserError("add a test case first: suite.add_test_case(TestCase(...))")
        cases = [
            Case(
                t.test_id,
                t.input_data,
                t.expected_output,
                t.tags,
                t.metadata,
                None if t.cluster is None else str(t.cluster),
            )
            for t in self.test_cases
        ]
        return Suite(self.name, None, cases, self.versions, self.evaluators, agent=self.agent,
                     repeats=self.repeats, timeout_s=self.timeout_s, concurrency=self.concurrency,
                     regression=self.regression)  # fmt: skip

    def run(self, versions: list[str] | None = None) -> BenchmarkResults:
        suite = self._suite()
        if self.agent is not None:
            run = run_suite(suite, versions)
        else:  # recorded outputs
            if any(t.actual_output is None for t in self.test_cases):
                raise UserError("no agent given and a test case has no actual_output to score")
            records = [
                CallRecord(suite.versions[0], 0, Call(t.test_id, t.input_data, t.expected_output, t.actual_output,
                                                      t.latency_ms, tags=t.tags, metadata=t.metadata))
                for t in self.test_cases
            ]  # fmt: skip
            started = _now()
            run = SuiteRun("local", suite, suite.versions[:1], started, _now(), records)
            run.results = score_calls(run.run_id, suite, records)
        comparator = AgentComparator(self.regression)
        comparisons = comparator.compare(
            run.results, suite.evaluators, run.versions, suite.name, suite.clusters
        )
        return BenchmarkResults(run, ResultAggregator().summaries(run.results), comparisons,
                                comparator.leaderboard(comparisons, run.versions))  # fmt: skip


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
