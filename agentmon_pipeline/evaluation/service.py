"""What the CLI and the Dagster assets do with a suite: run it, record it, judge it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentmon_pipeline.config import Settings
from agentmon_pipeline.config import settings as current_settings
from agentmon_pipeline.errors import UserError, WarehouseMissing
from agentmon_pipeline.evaluation import store
from agentmon_pipeline.evaluation.compare import AgentComparator, ResultAggregator
from agentmon_pipeline.evaluation.regression import MetricComparison, RegressionDetector
from agentmon_pipeline.evaluation.runner import SuiteRun, run_suite
from agentmon_pipeline.evaluation.suite import Suite, load_suite
from agentmon_pipeline.warehouse import connect


@dataclass
class SuiteReport:
    suite: Suite
    run: SuiteRun
    comparisons: list[MetricComparison]
    summaries: list[dict]
    spans_written: int = 0

    @property
    def regressed(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.verdict == "regressed"]

    @property
    def leaderboard(self) -> list[dict]:
        return AgentComparator(self.suite.regression).leaderboard(self.comparisons, self.run.versions)


def run_and_record(
    suite_ref: str | Suite,
    versions: list[str] | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SuiteReport:
    """Run a suite, store its results and benchmark spans, and replace its verdicts."""
    s = settings or current_settings()
    suite = suite_ref if isinstance(suite_ref, Suite) else load_suite(suite_ref)
    run = run_suite(suite, versions, progress)  # no warehouse lock while the agents run
    comparisons = AgentComparator(suite.regression).compare(
        run.results, suite.evaluators, run.versions, suite.name
    )
    with connect(s) as con:
        store.save_run(con, run)
        spans = store.write_benchmark_spans(con, s, run)
        if len(run.versions) > 1:
            store.save_comparisons(con, suite.name, run.run_id, comparisons)
    return SuiteReport(suite, run, comparisons, ResultAggregator().summaries(run.results), spans)


def judge_latest(suite: Suite, settings: Settings | None = None) -> tuple[str, list[MetricComparison]]:
    """Compare every candidate with the baseline on the newest stored run that has all the
    suite's versions, and replace the suite's verdicts with these."""
    s = settings or current_settings()
    with connect(s) as con:
        run_id = store.latest_run_id(con, suite.name, suite.versions)
        if run_id is None:
            raise UserError(f"no stored run of suite {suite.name} with all its versions {suite.versions}")
        results = store.load_results(con, run_id)
        comparisons = AgentComparator(suite.regression).compare(
            results, suite.evaluators, suite.versions, suite.name
        )
        store.save_comparisons(con, suite.name, run_id, comparisons)
    return run_id, comparisons


def compare_stored(
    suite_ref: str, baseline: str, candidate: str, settings: Settings | None = None
) -> tuple[Suite, str, list[MetricComparison]]:
    """Compare two versions on the newest stored run of the suite that has both."""
    s = settings or current_settings()
    suite = load_suite(suite_ref)
    if baseline == candidate:
        raise UserError(f"--baseline and --candidate are both {baseline!r}: compare two different versions")
    for version in (baseline, candidate):
        if version not in suite.versions:
            raise UserError(
                f"suite {suite.name}: version {version!r} is not in its versions {suite.versions}"
            )
    nothing = UserError(
        f"no stored run of suite {suite.name} with versions {baseline} and {candidate}; "
        f"run `agentmon eval run {suite_ref}` first, or add --run"
    )
    try:
        with connect(s, read_only=True) as con:
            run_id = store.latest_run_id(con, suite.name, [baseline, candidate])
            if run_id is None:
                raise nothing
            results = store.load_results(con, run_id)
    except WarehouseMissing:
        raise nothing from None
    comparisons = RegressionDetector(suite.regression).compare(
        results, suite.evaluators, baseline, candidate, suite.name
    )
    return suite, run_id, comparisons
