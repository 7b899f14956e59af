"""Production analytics as assets downstream of the marts: anomalies, forecasts, budget burn,
version comparisons and correlations, each a table in `analytics.*` with markdown metadata.
Findings (recent anomalies, a regressed version, a budget at risk) are WARN checks: recorded,
shown and alerted, never a failed run."""

from datetime import timedelta

import dagster as dg
import polars as pl

from agentmon_pipeline.analytics import compute
from agentmon_pipeline.analytics.budgets import parse_budgets
from agentmon_pipeline.analytics.db import DatabaseManager
from agentmon_pipeline.analytics.engine import AnalyticsEngine
from agentmon_pipeline.config import load_config_file, settings
from agentmon_pipeline.numbers import plain
from agentmon_pipeline.storage import connect

RUNS = dg.AssetKey(["marts", "fct_agent_runs"])


def _engine() -> AnalyticsEngine:
    return AnalyticsEngine(DatabaseManager(), fixed=True)  # the marts stand still while an asset computes


def _store(table: str, frame: pl.DataFrame, readiness: list[compute.Readiness]) -> int:
    with connect(settings()) as con:
        return compute.replace_table(con, table, frame, readiness)


def _md(frame: pl.DataFrame, columns: list[str], limit: int = 15) -> dg.MetadataValue:
    if frame.height == 0:
        return dg.MetadataValue.md("none")
    rows = frame.select(columns).head(limit).rows()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [plain(v) if isinstance(v, float) else ("total" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def strongest_per_series(frame: pl.DataFrame) -> pl.DataFrame:
    """The strongest abnormal hour of each (agent, metric), strongest first: one line per series,
    not fifteen hours of the same spike."""
    if frame.height == 0:
        return frame
    ranked = frame.with_columns(pl.col("score").abs().alias("_strength")).sort("_strength", descending=True)
    return ranked.unique(subset=["agent_id", "metric"], keep="first", maintain_order=True).drop("_strength")


def _refresh(table: str, compute_table, *args) -> tuple[AnalyticsEngine, pl.DataFrame, dict]:
    """Recompute `analytics.<table>` and its rows of `analytics.readiness`, store them; returns
    the engine, the frame, and metadata every analytics asset shows (rows, what waits and why)."""
    engine = _engine()
    frame, readiness = compute_table(engine, *args)
    stored = _store(table, frame, readiness)
    waiting = [r for r in readiness if r.status == "waiting"]
    lines = ["| scope | has | needs | why |", "|---|---|---|---|"] + [
        f"| {r.agent_id or 'total'} | {r.has} {r.unit} | {r.needs} | {r.reason} |" for r in waiting
    ]
    metadata = {"rows": stored, "waiting_for_history": len(waiting),
                "waiting": dg.MetadataValue.md("\n".join(lines) if waiting else "none: every scope has the history it needs")}  # fmt: skip
    return engine, frame, metadata


@dg.asset(
    key=["analytics", "anomalies"], deps=[RUNS], group_name="analytics", kinds={"python", "duckdb"},
    description="Abnormal hours of the last 30 days per agent and in total (runs, error rate, p95 latency, "
    "cost, tokens): a robust day level x hour profile, each metric judged by its own noise model (negative "
    "binomial counts, compound sums of costs, binomial rates, latency on the log scale).",
    check_specs=[dg.AssetCheckSpec("no_recent_anomalies", asset=["analytics", "anomalies"],
                                   description="WARN when an hour of the last day of data was abnormal.")],
)  # fmt: skip
def anomalies(context: dg.AssetExecutionContext):
    engine, frame, metadata = _refresh("anomalies", compute.compute_anomalies)
    recent = pl.DataFrame()
    if frame.height:
        recent = frame.filter(pl.col("bucket_start") >= engine.complete_until() - timedelta(hours=24))
    columns = ["bucket_start", "agent_id", "metric", "value", "expected", "score"]
    yield dg.MaterializeResult(metadata={**metadata, "top": _md(strongest_per_series(frame), columns)})
    yield dg.AssetCheckResult(check_name="no_recent_anomalies", passed=recent.height == 0,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"last_24h": recent.height, "which": _md(recent, columns)})  # fmt: skip


@dg.asset(
    key=["analytics", "forecasts"], deps=[RUNS], group_name="analytics", kinds={"python", "duckdb"},
    description="Daily cost, tokens and runs for the next 14 days, per agent and in total: Holt-Winters "
    "with weekly seasonality, 80% and 95% prediction intervals calibrated by a rolling-origin backtest "
    "(MASE, and the share of held-out days the model's own intervals covered).",
)  # fmt: skip
def forecasts() -> dg.MaterializeResult:
    _, frame, metadata = _refresh("forecasts", compute.compute_forecasts)
    summary = pl.DataFrame()
    if frame.height:
        summary = (
            frame.filter(pl.col("metric") == "cost_usd")
            .group_by("agent_id", maintain_order=True)
            .agg(pl.col("yhat").sum().alias("next_14d_usd"), pl.col("yhat_lower_80").sum().alias("low_80"),
                 pl.col("yhat_upper_80").sum().alias("high_80"), pl.col("model").first(),
                 pl.col("backtest_mase").first(), pl.col("backtest_mase_seasonal_naive").first(),
                 pl.col("backtest_folds").first(), pl.col("backtest_coverage_80").first(),
                 pl.col("interval_widening_80").first())
        )  # fmt: skip
    return dg.MaterializeResult(metadata={**metadata, "cost_next_14_days": _md(summary, summary.columns)})


@dg.asset(
    key=["analytics", "budget_burn"], deps=[RUNS], group_name="analytics", kinds={"python", "duckdb"},
    description="Monthly budgets of agentmon.yaml: spend to date, projected month-end spend with its "
    "interval, and the day the budget runs out.",
    check_specs=[dg.AssetCheckSpec("within_budget", asset=["analytics", "budget_burn"],
                                   description="WARN when a budget is spent or projected to be (80% interval).")],
)  # fmt: skip
def budget_burn():
    budgets = parse_budgets(load_config_file().get("budgets"))
    _, frame, metadata = _refresh("budget_burn", compute.compute_budget_burn, budgets)
    columns = ["agent_id", "budget_usd", "spend_to_date", "projected_month_end", "projected_upper_80",
               "runs_out_on", "status"]  # fmt: skip
    risky = frame.filter(pl.col("status") != "ok") if frame.height else frame
    yield dg.MaterializeResult(metadata={**metadata, "status": _md(frame, columns) if budgets else
                                         dg.MetadataValue.md("no budgets in agentmon.yaml")})  # fmt: skip
    yield dg.AssetCheckResult(check_name="within_budget", passed=risky.height == 0,
                              severity=dg.AssetCheckSeverity.WARN, metadata={"at_risk_or_over": risky.height})  # fmt: skip


@dg.asset(
    key=["analytics", "version_comparisons"], deps=[RUNS], group_name="analytics", kinds={"python", "duckdb"},
    description="Each agent version against the one it replaced, day by day: daily success rate, p95 latency and "
    "cost per run against the agent's day-to-day noise (t-test, AR(1) days), looks after 3 and 7 days, Holm, verdicts.",
    check_specs=[dg.AssetCheckSpec("no_version_regressions", asset=["analytics", "version_comparisons"],
                                   description="WARN when a version regressed against the one before it.")],
)  # fmt: skip
def version_comparisons():
    _, frame, metadata = _refresh("version_comparisons", compute.compute_version_comparisons)
    regressed = frame.filter(pl.col("verdict") == "regressed") if frame.height else frame
    columns = ["agent_id", "baseline_version", "candidate_version", "metric", "effect", "ci_low", "ci_high",
               "p_adjusted", "verdict"]  # fmt: skip
    yield dg.MaterializeResult(metadata={**metadata, "verdicts": _md(frame, columns, 30)})
    yield dg.AssetCheckResult(check_name="no_version_regressions", passed=regressed.height == 0,
                              severity=dg.AssetCheckSeverity.WARN, metadata={"regressed": _md(regressed, columns)})  # fmt: skip


@dg.asset(
    key=["analytics", "correlations"], deps=[RUNS], group_name="analytics", kinds={"python", "duckdb"},
    description="Pearson and Spearman correlations, with p-values, between the hourly series of runs, "
    "error rate, p95 latency, cost and tokens (all agents).",
)  # fmt: skip
def correlations() -> dg.MaterializeResult:
    _, frame, metadata = _refresh("correlations", compute.compute_correlations)
    columns = ["metric_a", "metric_b", "method", "r", "p_value", "n"]
    return dg.MaterializeResult(metadata={**metadata, "table": _md(frame, columns, 20)})


analytics_assets = [anomalies, forecasts, budget_burn, version_comparisons, correlations]
