"""The analytics tables, computed whole for every agent (and all agents together) and stored.

What the Dagster assets in `defs/analytics/` call; each function returns a polars DataFrame in
the column order of its `analytics.*` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import polars as pl

from agentmon_pipeline.analytics.budgets import Budget
from agentmon_pipeline.analytics.engine import (
    MIN_ANOMALY_HOURS,
    MIN_CORRELATION_HOURS,
    MIN_FORECAST_DAYS,
    AnalyticsEngine,
    NotEnoughHistory,
)
from agentmon_pipeline.storage import transaction

ANOMALY_METRICS = ("runs", "error_rate", "p95_duration_ms", "cost_usd", "total_tokens")
FORECAST_METRICS = ("cost_usd", "total_tokens", "runs")
CORRELATION_METRICS = ("runs", "error_rate", "p95_duration_ms", "cost_usd", "total_tokens")


@dataclass
class Readiness:
    """Whether an analysis could judge a scope (an agent, or all agents: None), and if not, how
    much history it has and needs. Stored in `analytics.readiness`; `agentmon status` lists it."""

    analysis: str
    agent_id: str | None
    has: int
    needs: int
    unit: str
    reason: str | None = None

    @property
    def status(self) -> str:
        return "ready" if self.has >= self.needs else "waiting"

    def as_row(self, now: datetime) -> dict:
        return {"analysis": self.analysis, "agent_id": self.agent_id, "status": self.status, "has": self.has,
                "needs": self.needs, "unit": self.unit, "reason": self.reason, "computed_at": now}  # fmt: skip


Computed = tuple[pl.DataFrame, list[Readiness]]


def _scopes(engine: AnalyticsEngine) -> list[str | None]:
    return [None, *engine.agents()]


def _hours_readiness(engine: AnalyticsEngine, analysis: str, agent: str | None, needs: int) -> Readiness:
    has = engine.complete_hours(agent)
    who = f"agent {agent} has" if agent else "the warehouse has"
    reason = None if has >= needs else f"{analysis} need {needs} complete hours of history, {who} {has}"
    if has == 0 and engine.first_run(agent) is None:  # metrics alone: the analyses judge agent runs
        reason = f"{analysis} judge agent runs (runs, errors, latency, cost, tokens): none yet"
    return Readiness(analysis, agent, has, needs, "complete hours", reason)


def compute_anomalies(engine: AnalyticsEngine, days: int = 30, method: str = "seasonal") -> Computed:
    """Every anomaly metric of every scope that has the history the seasonal fit needs
    (MIN_ANOMALY_HOURS complete hours); the others wait, with the reason."""
    now = datetime.now(UTC)
    frames, readiness = [], []
    for agent in _scopes(engine):
        ready = _hours_readiness(engine, "anomalies", agent, MIN_ANOMALY_HOURS)
        readiness.append(ready)
        if ready.status == "ready":
            frames += [engine.detect_anomalies(metric, method=method, agent_id=agent, days=days)
                       for metric in ANOMALY_METRICS]  # fmt: skip
    frame = pl.concat(frames) if frames else pl.DataFrame()
    if frame.height:
        frame = frame.filter(pl.col("value").is_finite() & pl.col("expected").is_finite())
        frame = frame.with_columns(pl.lit(now).alias("detected_at")).sort(
            "score", descending=True, nulls_last=True
        )
    return frame, readiness


def compute_forecasts(engine: AnalyticsEngine, horizon_days: int = 14) -> Computed:
    now = datetime.now(UTC)
    frames, readiness = [], []
    for agent in _scopes(engine):
        try:
            frames += [engine.forecast(metric, horizon_days, agent) for metric in FORECAST_METRICS]
            days = frames[-1]["history_days"][0]
            readiness.append(Readiness("forecasts", agent, days, MIN_FORECAST_DAYS, "complete days"))
        except NotEnoughHistory as wait:
            readiness.append(Readiness("forecasts", agent, wait.has, wait.needs, wait.unit, str(wait)))
    frame = pl.concat(frames).with_columns(pl.lit(now).alias("generated_at")) if frames else pl.DataFrame()
    return frame, readiness


def compute_budget_burn(engine: AnalyticsEngine, budgets: list[Budget]) -> Computed:
    now = datetime.now(UTC)
    rows, readiness = [], []
    for budget in budgets:
        try:
            rows.append({**asdict(engine.budget_status(budget)), "computed_at": now})
            readiness.append(
                Readiness("budget_burn", budget.agent_id, engine.complete_days(), 1, "complete days")
            )
        except NotEnoughHistory as wait:
            readiness.append(
                Readiness("budget_burn", budget.agent_id, wait.has, wait.needs, wait.unit, str(wait))
            )
    return (pl.DataFrame(rows) if rows else pl.DataFrame()), readiness


def compute_version_comparisons(engine: AnalyticsEngine) -> Computed:
    now = datetime.now(UTC)
    comparisons = engine.compare_versions()
    rows = [{**c.as_dict(), "computed_at": now} for c in comparisons]
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    latest = {}  # each agent's latest deployment: does it wait for something?
    for c in comparisons:
        if c.agent_id not in latest or c.switched_at >= latest[c.agent_id].switched_at:
            latest[c.agent_id] = c
    # one query for every agent's production versions, not one per agent
    versions = engine.db.query(
        "select agent_id, count(distinct agent_version) as versions from marts.fct_agent_runs "
        "where not is_benchmark and agent_id is not null group by 1 order by 1"
    )
    readiness = []
    for agent, count in versions.iter_rows():
        waits = latest[agent].waiting if agent in latest else None
        if count >= 2 and waits is not None:
            has, needs, unit = waits
            readiness.append(Readiness("version_comparisons", agent, int(has), int(needs), unit,
                                       f"{latest[agent].candidate_version}: {latest[agent].test}"))  # fmt: skip
            continue
        reason = (
            None
            if count >= 2
            else f"version comparisons need 2 versions in production, agent {agent} has {count}"
        )
        readiness.append(Readiness("version_comparisons", agent, int(count), 2, "versions", reason))
    return frame, readiness


def compute_correlations(engine: AnalyticsEngine, days: int = 30) -> Computed:
    now = datetime.now(UTC)
    ready = _hours_readiness(engine, "correlations", None, MIN_CORRELATION_HOURS)
    if ready.status == "waiting":
        return pl.DataFrame(), [ready]
    frames = [engine.correlations(list(CORRELATION_METRICS), method, None, "1h", days=days)
              for method in ("pearson", "spearman")]  # fmt: skip
    return pl.concat(frames).with_columns(pl.lit(now).alias("computed_at")), [ready]


def finite(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN and infinities become null: nothing NaN or infinite is written to an analytics table."""
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    if not floats:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).is_finite()).then(pl.col(name)).otherwise(None).alias(name) for name in floats
    )


def replace_table(con, table: str, frame: pl.DataFrame, readiness: list[Readiness] | None = None) -> int:
    """Replace the rows of `analytics.<table>` with the frame's (matched by column name), and the
    analysis' rows of `analytics.readiness` with `readiness`, in one transaction."""
    with transaction(con):
        _replace(con, f"analytics.{table}", frame, "true")
        if readiness is not None:
            now = datetime.now(UTC)
            rows = pl.DataFrame([r.as_row(now) for r in readiness], schema=READINESS_SCHEMA)
            _replace(con, "analytics.readiness", rows, f"analysis = '{table}'")
    return frame.height


READINESS_SCHEMA = {"analysis": pl.String, "agent_id": pl.String, "status": pl.String, "has": pl.Int64,
                    "needs": pl.Int64, "unit": pl.String, "reason": pl.String,
                    "computed_at": pl.Datetime("us", "UTC")}  # fmt: skip


def _replace(con, table: str, frame: pl.DataFrame, where: str) -> None:
    con.execute(f"delete from {table} where {where}")
    if not frame.height:
        return
    # a column of nulls only has no type to give; left out, it is null all the same
    frame = finite(frame.select(name for name, dtype in frame.schema.items() if dtype != pl.Null))
    con.register("new_rows", frame.to_arrow())
    names = ", ".join(f'"{name}"' for name in frame.columns)
    con.execute(f"insert into {table} ({names}) select {names} from new_rows")
    con.unregister("new_rows")
