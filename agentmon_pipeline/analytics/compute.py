"""The analytics tables, computed whole for every agent (and all agents together) and stored.

What the Dagster assets in `defs/analytics/` call; each function returns a polars DataFrame in
the column order of its `analytics.*` table.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import polars as pl

from agentmon_pipeline.analytics.budgets import Budget
from agentmon_pipeline.analytics.engine import AnalyticsEngine
from agentmon_pipeline.errors import UserError

ANOMALY_METRICS = ("runs", "error_rate", "p95_duration_ms", "cost_usd", "total_tokens")
FORECAST_METRICS = ("cost_usd", "total_tokens", "runs")
CORRELATION_METRICS = ("runs", "error_rate", "p95_duration_ms", "cost_usd", "total_tokens")


def _scopes(engine: AnalyticsEngine) -> list[str | None]:
    return [None, *engine.agents()]


def compute_anomalies(engine: AnalyticsEngine, days: int = 30, method: str = "seasonal") -> pl.DataFrame:
    now = datetime.now(UTC)
    frames = [
        engine.detect_anomalies(metric, method=method, agent_id=agent, days=days)
        for agent in _scopes(engine)
        for metric in ANOMALY_METRICS
    ]
    frame = pl.concat(frames) if frames else pl.DataFrame()
    return frame.with_columns(pl.lit(now).alias("detected_at")).sort(
        "score", descending=True, nulls_last=True
    )


def compute_forecasts(engine: AnalyticsEngine, horizon_days: int = 14) -> pl.DataFrame:
    now = datetime.now(UTC)
    frames = [
        engine.forecast(metric, horizon_days, agent)
        for agent in _scopes(engine)
        for metric in FORECAST_METRICS
    ]
    return pl.concat(frames).with_columns(pl.lit(now).alias("generated_at"))


def compute_budget_burn(engine: AnalyticsEngine, budgets: list[Budget]) -> pl.DataFrame:
    now = datetime.now(UTC)
    rows = []
    for budget in budgets:
        try:
            rows.append({**asdict(engine.budget_status(budget)), "computed_at": now})
        except UserError:  # an agent with a budget and no runs yet: nothing spent
            continue
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def compute_version_comparisons(engine: AnalyticsEngine) -> pl.DataFrame:
    now = datetime.now(UTC)
    rows = [{**c.as_dict(), "computed_at": now} for c in engine.compare_versions()]
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def compute_correlations(engine: AnalyticsEngine, days: int = 30) -> pl.DataFrame:
    now = datetime.now(UTC)
    frames = [engine.correlations(list(CORRELATION_METRICS), method, None, "1h", days=days)
              for method in ("pearson", "spearman")]  # fmt: skip
    return pl.concat(frames).with_columns(pl.lit(now).alias("computed_at"))


def replace_table(con, table: str, frame: pl.DataFrame) -> int:
    """Replace the rows of `analytics.<table>` with the frame's (matched by column name)."""
    con.execute("begin transaction")
    try:
        con.execute(f"delete from analytics.{table}")
        if frame.height:
            # a column of nulls only has no type to give; left out, it is null all the same
            frame = frame.select(name for name, dtype in frame.schema.items() if dtype != pl.Null)
            con.register("new_rows", frame.to_arrow())
            names = ", ".join(f'"{name}"' for name in frame.columns)
            con.execute(f"insert into analytics.{table} ({names}) select {names} from new_rows")
            con.unregister("new_rows")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return frame.height
