"""What the CLI and the Dagster assets do with a suite: run it, record it, judge it."""

from __future__ import annotations

import math
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
from agentmon_pipeline.storage import connect


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
        run.results, suite.evaluators, run.versions, suite.name, suite.clusters
    )
    with connect(s) as con:
        store.save_run(con, run)
        spans = store.write_benchmark_spans(con, s, run)
        if len(run.versions) > 1:
            store.save_comparisons(con, suite.name, run.run_id, comparisons)
    return SuiteReport(suite, run, comparisons, ResultAggregator().summaries(run.results), spans)


def current_verdicts(suite: Suite, settings: Settings | None = None) -> tuple[str, list[MetricComparison]]:
    """The verdicts of the suite's newest complete run: those run_and_record stored when it ran,
    while the suite file (thresholds included), dataset and agent are what that run measured;
    else judged again (judge_latest). The bootstraps of a run are done once."""
    s = settings or current_settings()
    with connect(s, read_only=True) as con:
        run_id = store.latest_run_id(con, suite.name, suite.versions)
        stored = store.load_comparisons(con, suite.name, run_id) if run_id is not None else []
        if stored and store.why_due(con, suite) is None:
            return run_id, stored
    return judge_latest(suite, s)


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
            results, suite.evaluators, suite.versions, suite.name, suite.clusters
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
    run_id, results = _latest_results(
        s, suite.name, [baseline, candidate],
        f"no stored run of suite {suite.name} with versions {baseline} and {candidate}; "
        f"run `agentmon eval run {suite_ref}` first, or add --run",
    )  # fmt: skip
    comparisons = RegressionDetector(suite.regression).compare(
        results, suite.evaluators, baseline, candidate, suite.name, suite.clusters
    )
    return suite, run_id, comparisons


def _latest_results(s: Settings, suite: str, versions: list[str], nothing: str):
    """The newest stored run of the suite with these versions and its results; `nothing`: the
    error when there is none (or no warehouse yet)."""
    try:
        with connect(s, read_only=True) as con:
            run_id = store.latest_run_id(con, suite, versions)
            if run_id is None:
                raise UserError(nothing)
            return run_id, store.load_results(con, run_id)
    except WarehouseMissing:
        raise UserError(nothing) from None


@dataclass
class PowerRow:
    """What a suite could find for one metric of one candidate, and what it would take to find
    `effect`: at the stored run's cases and `repeats` runs per case."""

    candidate: str
    metric: str
    relative: bool
    cases: int
    clusters: int | None
    repeats: float
    level: float  # the two-sided level one metric that changed alone is tested at: alpha / m (Holm)
    detectable: float  # minimum detectable effect at 80% power
    effect: float  # the effect planned for
    power: float  # of finding `effect` with these cases
    cases_needed: int | None  # for 80% power at `effect`


def plan_power(
    suite_ref: str, effect: float | None = None, repeats: int | None = None, metric: str | None = None,
    settings: Settings | None = None,
) -> tuple[Suite, str, list[PowerRow]]:  # fmt: skip
    """Power of a suite from its newest stored run with all its versions (the observed variance of
    each metric, clusters included): per candidate and metric the MDE at 80% power, the power at
    `effect` (default: the suite's min_effect, or min_relative_change for latency, tokens and
    cost) and the cases needed for 80% power, at the run's repeats or at `repeats` (rates and
    scores only: the within-case noise of a run with repeats tells what more repeats buy).
    Returns the suite, the run id and the rows."""
    s = settings or current_settings()
    suite = load_suite(suite_ref)
    if len(suite.versions) < 2:
        raise UserError(
            f"suite {suite.name} has one version: power is that of a comparison with a candidate; add one to "
            "its versions, or plan with --cases and --baseline-rate"
        )
    run_id, results = _latest_results(
        s, suite.name, suite.versions,
        f"no stored run of suite {suite.name} with all its versions {suite.versions}; "
        f"run `agentmon eval run {suite_ref}` first",
    )  # fmt: skip
    comparisons = AgentComparator(suite.regression).compare(
        results, suite.evaluators, suite.versions, suite.name, suite.clusters
    )
    # Holm's m: the metrics of each candidate's comparison, before any are left out of the view
    metrics = {v: sum(c.candidate == v for c in comparisons) for v in suite.versions[1:]}
    if metric is not None:
        names = sorted({c.metric for c in comparisons})
        comparisons = [c for c in comparisons if metric in (c.metric, c.evaluator)]
        if not comparisons:
            raise UserError(f"suite {suite.name} has no metric {metric!r}; its metrics: {', '.join(names)}")
    rows = []
    for c in comparisons:
        design, alone = c.design, suite.regression.alpha / metrics[c.candidate]
        if design is None:
            continue
        if repeats is not None and repeats != design.repeats:
            if c.relative:
                continue  # latency, tokens and cost are not projected to other repeats
            if math.isnan(design.within_variance):
                raise UserError(
                    f"--repeats {repeats}: the stored run of suite {suite.name} has one run per case, so its "
                    "within-case noise is unknown; run it with `repeats: 2` or more first, or plan with "
                    "--cases and --baseline-rate"
                )
            design = design.with_repeats(repeats)
        planned = effect if effect is not None else (
            suite.regression.min_relative_change if c.relative else suite.regression.min_effect)  # fmt: skip
        rows.append(PowerRow(
            c.candidate, c.metric, c.relative, c.n, c.clusters, design.repeats, alone,
            design.mde(c.n, alone), planned, design.power(planned, c.n, alone),
            design.cases_needed(planned, alone),
        ))  # fmt: skip
    return suite, run_id, rows
