"""`AnalyticsEngine`: the seed document's analytics over the marts.

    db = DatabaseManager()                 # the warehouse of MONITORING_DB_URL
    analytics = AnalyticsEngine(db)
    analytics.get_time_series("error_rate", start, end, granularity="1h", agent_id="support-bot")
    analytics.detect_anomalies("p95_duration_ms", method="seasonal", agent_id="support-bot")
    analytics.forecast("cost_usd", horizon_days=14)
    analytics.compare_versions("support-bot")

Everything reads production traffic only (benchmark runs are left out) and returns polars
DataFrames or plain dicts. The Dagster assets in `defs/analytics/` compute the same things for
every agent and store them in `analytics.*`.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from itertools import combinations

import numpy as np
import polars as pl
from scipy import stats as sps

from agentmon_pipeline.analytics import anomalies as an
from agentmon_pipeline.analytics.budgets import Budget, BudgetBurn, burn
from agentmon_pipeline.analytics.forecast import forecast_series
from agentmon_pipeline.analytics.timeseries import (
    KIND,
    RUN_METRICS,
    canonical,
    get_time_series,
    run_series_sql,
    series_params,
)
from agentmon_pipeline.analytics.versions import VersionComparison, compare_versions
from agentmon_pipeline.errors import UserError

LATE_DATA_GRACE = timedelta(hours=1)  # how long after its end the latest run's hour may still fill
MIN_FORECAST_DAYS = 3  # fewer complete days give no level to smooth (forecast.py's models)
MIN_ANOMALY_HOURS = 72  # three daily cycles: what the seasonal method fits (anomalies.py)
MIN_CORRELATION_HOURS = 24


def whole_hour(first: datetime) -> datetime:
    """The start of the first whole hour from `first` (the hour of a first run at 09:55 is not one)."""
    hour = first.replace(minute=0, second=0, microsecond=0)
    return hour if hour == first else hour + timedelta(hours=1)


class NotEnoughHistory(UserError):
    """An analysis that waits for more history: what it has and what it needs."""

    def __init__(self, message: str, has: int, needs: int, unit: str):
        super().__init__(message)
        self.has, self.needs, self.unit = has, needs, unit


RUN_LEVEL = {"duration_ms", "cost_usd", "total_tokens", "input_tokens", "output_tokens", "llm_call_count",
             "tool_call_count", "retry_count"}  # fmt: skip


class AnalyticsEngine:
    def __init__(self, db, fixed: bool = False):
        """`fixed`: the marts do not change while this engine is used (one analytics asset's
        computation), so the range of every agent's runs is read once, in one query, and so are
        all run metrics of a scope and window: on Spark each statement is a job of its own."""
        self.db = db
        self._edges: dict[str | None, tuple[datetime, datetime]] | None = {} if fixed else None
        self._runs: dict[
            tuple, pl.DataFrame
        ] = {}  # fixed: every run metric of a scope and window, in one query

    # --- the range of the data ------------------------------------------------------------
    def _runs_edge(self, edge: str, agent_id: str | None) -> datetime | None:
        """min or max(started_at) of the scope's production runs."""
        if self._edges is None:
            where = "not is_benchmark" + (" and agent_id = $agent" if agent_id else "")
            return self.db.scalar(f"select {edge}(started_at) from marts.fct_agent_runs where {where}",
                                  {"agent": agent_id} if agent_id else None)  # fmt: skip
        if not self._edges:
            frame = self.db.query(
                """select agent_id, false as total, min(started_at) as first, max(started_at) as last
                   from marts.fct_agent_runs where not is_benchmark and agent_id is not null group by agent_id
                   union all
                   select null, true, min(started_at), max(started_at)
                   from marts.fct_agent_runs where not is_benchmark"""
            )
            self._edges = {
                None if total else agent: (first, last) for agent, total, first, last in frame.iter_rows()
            }
        first, last = self._edges.get(agent_id, (None, None))
        return first if edge == "min" else last

    def data_end(self, agent_id: str | None = None) -> datetime | None:
        return self._runs_edge("max", agent_id)

    def complete_until(self, now: datetime | None = None, agent_id: str | None = None) -> datetime | None:
        """The end of the complete hours. The hour of the latest production run is complete once
        an hour has passed since its end (`LATE_DATA_GRACE`: the files with its last runs have
        landed); the current hour never is. A bucket is judged, forecast from and charted as an
        actual only when it ends by then (docs/analytics.md, "only complete buckets"). With an agent, its
        own latest run: an agent whose telemetry arrives later than the others' is not judged
        on hours it has not sent yet."""
        end = self.data_end(agent_id)
        if end is None:
            return None
        now = now or datetime.now(UTC)
        hour = end.replace(minute=0, second=0, microsecond=0)
        until = hour + timedelta(hours=1) if now >= hour + timedelta(hours=1) + LATE_DATA_GRACE else hour
        return min(until, now.replace(minute=0, second=0, microsecond=0))

    def complete_hours(self, agent_id: str | None = None) -> int:
        """Complete hours since the scope's first production run (until its own latest run)."""
        first, until = self.first_run(agent_id), self.complete_until(agent_id=agent_id)
        if first is None or until is None:
            return 0
        return max(int((until - whole_hour(first)).total_seconds() // 3600), 0)

    def complete_days(self, agent_id: str | None = None) -> int:
        """Complete UTC days since the day of the scope's first production run."""
        first, until = self.first_run(agent_id), self.complete_until()
        if first is None or until is None:
            return 0
        return max((until.date() - first.date()).days, 0)

    def first_run(self, agent_id: str | None = None) -> datetime | None:
        return self._runs_edge("min", agent_id)

    def agents(self) -> list[str]:
        frame = self.db.query(
            "select distinct agent_id from marts.fct_agent_runs where not is_benchmark and agent_id is not null order by 1"
        )
        return frame["agent_id"].to_list()

    def _window(
        self, start_time, end_time, days: int, agent_id: str | None = None
    ) -> tuple[datetime, datetime]:
        """[start, end) of whole hours. Without an end, it ends with the complete hours (of the
        agent, with one: `complete_until`): the hour still filling is not judged."""
        if end_time is None:
            end = self.complete_until(agent_id=agent_id)
            if end is None:
                raise UserError(
                    "no production runs in the warehouse yet: drop telemetry and run `agentmon run`"
                )
        else:
            end = (
                end_time
                if isinstance(end_time, datetime)
                else datetime.combine(end_time, datetime.min.time(), UTC)
            )
            end = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return (start_time or end - timedelta(days=days)), end

    # --- series -----------------------------------------------------------------------------
    def get_time_series(
        self, metric_name, start_time, end_time, granularity="1h", agent_id=None, version=None
    ):
        metric = canonical(metric_name)
        if self._edges is None or metric not in RUN_METRICS:
            return get_time_series(self.db, metric_name, start_time, end_time, granularity, agent_id, version)
        key = (granularity, agent_id, version, start_time, end_time)
        if key not in self._runs:
            sql = run_series_sql(list(RUN_METRICS), granularity, agent_id, version, self.db.settings)
            self._runs[key] = self.db.query(sql, series_params(start_time, end_time, None, agent_id, version))
        return self._runs[key].select("bucket_start", pl.col(metric).alias("value"), "n",
                                      pl.col(f"k_{metric}").alias("k"), pl.lit(metric).alias("metric"))  # fmt: skip

    def detect_anomalies(
        self, metric_name: str, window_size: int = 10, threshold: float | None = None, method: str = "zscore",
        agent_id: str | None = None, granularity: str = "1h", start_time=None, end_time=None, days: int = 30,
        all_points: bool = False,
    ) -> pl.DataFrame:  # fmt: skip
        """Anomalous buckets (or every bucket with its score, `all_points=True`) of one series:
        bucket_start, value, expected, score, direction, n, method, note."""
        if method not in an.DEFAULT_THRESHOLDS:
            raise UserError(f"method {method!r}: expected one of {', '.join(an.DEFAULT_THRESHOLDS)}")
        threshold = an.DEFAULT_THRESHOLDS[method] if threshold is None else threshold
        start, end = self._window(start_time, end_time, days, agent_id)
        if start_time is None:  # not before the agent's first run: hours before it are not "zero runs"
            first = self.first_run(agent_id)
            if first is not None:
                start = max(start, whole_hour(first))
        series = self.get_time_series(metric_name, start, end, granularity, agent_id)
        metric = canonical(metric_name)
        values = series["value"].to_numpy().astype(float)
        kind = KIND.get(metric, "level")
        scores = an.score_series(
            values, method, window_size, an.PERIODS[granularity], n=series["n"].to_numpy().astype(float),
            k=series["k"].to_numpy().astype(float) if kind == "rate" else None, kind=kind,
            times=series["bucket_start"].dt.replace_time_zone(None).to_numpy(),
        )  # fmt: skip
        frame = series.with_columns(
            pl.Series("expected", scores.expected), pl.Series("score", scores.score),
            pl.lit(method).alias("method"), pl.lit(scores.note).alias("note"),
            pl.lit(agent_id).cast(pl.String).alias("agent_id"),
        ).with_columns(pl.when(pl.col("score") > 0).then(pl.lit("up")).otherwise(pl.lit("down")).alias("direction"))  # fmt: skip
        if not all_points:
            frame = frame.filter(pl.col("score").abs() >= threshold)
        return frame.select("bucket_start", "agent_id", "metric", "value", "expected", "score", "direction", "n",
                            "method", "note")  # fmt: skip

    def correlations(self, metrics: list[str], method: str = "pearson", agent_id=None, granularity="1h",
                     start_time=None, end_time=None, days: int = 30) -> pl.DataFrame:  # fmt: skip
        """Pairwise correlation of the metrics' series over the buckets where both have values."""
        if method not in ("pearson", "spearman"):
            raise UserError(f"method {method!r}: expected pearson or spearman")
        start, end = self._window(start_time, end_time, days)
        series = {m: self.get_time_series(m, start, end, granularity, agent_id)["value"].to_numpy().astype(float)
                  for m in metrics}  # fmt: skip
        rows = []
        for a, b in combinations(metrics, 2):
            x, y = series[a], series[b]
            ok = np.isfinite(x) & np.isfinite(y)
            r = p = math.nan
            if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
                test = sps.pearsonr if method == "pearson" else sps.spearmanr
                result = test(x[ok], y[ok])
                r, p = float(result.statistic), float(result.pvalue)
            rows.append({"metric_a": canonical(a), "metric_b": canonical(b), "method": method, "r": r,
                         "p_value": p, "n": int(ok.sum()), "agent_id": agent_id, "granularity": granularity})  # fmt: skip
        return pl.DataFrame(rows, schema_overrides={"agent_id": pl.String})

    def distribution(self, metric: str, agent_id: str | None = None, bins: int = 20, days: int = 30) -> dict:
        """Percentiles, histogram, skewness and a normality test (D'Agostino–Pearson for n >= 20,
        else Shapiro–Wilk). Per run for run-level measures (duration_ms, cost_usd, tokens), per
        hourly bucket for the others."""
        name = "duration_ms" if canonical(metric) in ("avg_duration_ms",) else metric
        if name in RUN_LEVEL:
            where = "not is_benchmark" + (" and agent_id = $agent" if agent_id else "")
            params = {"agent": agent_id} if agent_id else {}
            values = self.db.query(
                f"select {name}::double precision as v from marts.fct_agent_runs where {where}", params
            )["v"]
            values = values.drop_nulls().to_numpy()
        else:
            start, end = self._window(None, None, days)
            values = self.get_time_series(metric, start, end, "1h", agent_id)["value"].drop_nulls().to_numpy()
        if values.size == 0:
            raise UserError(f"no values of {metric!r}" + (f" for agent {agent_id}" if agent_id else ""))
        counts, edges = np.histogram(values, bins=bins)
        if values.size >= 20:
            test, result = "dagostino_pearson", sps.normaltest(values)
        elif values.size >= 3:
            test, result = "shapiro_wilk", sps.shapiro(values)
        else:
            test, result = "none", None
        pct = dict(
            zip(
                ("p5", "p25", "p50", "p75", "p95", "p99"),
                np.percentile(values, [5, 25, 50, 75, 95, 99]).tolist(),
                strict=True,
            )
        )
        return {
            "metric": metric, "agent_id": agent_id, "n": int(values.size), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else math.nan, "min": float(values.min()),
            "max": float(values.max()), **pct, "skewness": float(sps.skew(values)) if values.size > 2 else math.nan,
            "histogram": {"counts": counts.tolist(), "edges": edges.tolist()}, "normality_test": test,
            "normality_p_value": float(result.pvalue) if result is not None else math.nan,
        }  # fmt: skip

    def get_execution_statistics(self, agent_id: str) -> dict:
        frame = self.db.query(
            """
            select count(*) as runs, avg(is_success::int) as success_rate,
                   avg((retry_count > 0)::int) as retry_rate, avg(duration_ms) as avg_duration_ms,
                   percentile_cont(0.5) within group (order by duration_ms) as p50_duration_ms, percentile_cont(0.95) within group (order by duration_ms) as p95_duration_ms,
                   percentile_cont(0.99) within group (order by duration_ms) as p99_duration_ms, sum(total_tokens) as total_tokens,
                   sum(cost_usd) as cost_usd, sum(llm_call_count) as llm_calls, sum(tool_call_count) as tool_calls,
                   min(started_at) as first_run, max(started_at) as last_run,
                   count(distinct agent_version) as versions
            from marts.fct_agent_runs where not is_benchmark and agent_id = $agent
            """,
            {"agent": agent_id},
        )  # fmt: skip
        stats = frame.to_dicts()[0]
        if not stats["runs"]:
            raise UserError(f"no production runs of agent {agent_id!r}")
        return {"agent_id": agent_id, **stats}

    # --- forecasts, budgets, versions -------------------------------------------------------
    def daily_series(
        self, metric: str, agent_id: str | None = None, end_time=None, whole: bool = True
    ) -> pl.DataFrame:
        """Complete UTC days of the metric, from the first whole day with data (`whole=False`: the
        day of the first run, part of it as it may be: money spent then is spent) to the last
        complete one."""
        first = self.first_run(agent_id)
        last = self.complete_until() if end_time is None else end_time + timedelta(hours=1)
        if first is None or last is None:
            raise NotEnoughHistory(
                "no production runs to forecast from" + (f" for agent {agent_id}" if agent_id else ""),
                0, MIN_FORECAST_DAYS, "complete days",
            )  # fmt: skip
        end_day = last.date()  # the last complete day ends before this one
        start = datetime.combine(first.date(), datetime.min.time(), UTC)
        if whole and first > start:  # the day of the first run began before it: not a whole day
            start += timedelta(days=1)
        end = datetime.combine(end_day, datetime.min.time(), UTC)
        if end <= start:
            return self.get_time_series(metric, start, start, "1d", agent_id)
        return self.get_time_series(metric, start, end, "1d", agent_id)

    def forecast(self, metric_name: str, horizon_days: int = 14, agent_id: str | None = None) -> pl.DataFrame:
        series = self.daily_series(metric_name, agent_id)
        if series.height < MIN_FORECAST_DAYS:
            raise NotEnoughHistory(
                f"forecasts need {MIN_FORECAST_DAYS} complete days of history, "
                + (f"agent {agent_id} has" if agent_id else "the warehouse has") + f" {series.height}",
                series.height, MIN_FORECAST_DAYS, "complete days",
            )  # fmt: skip
        values = series["value"].to_numpy().astype(float)
        result = forecast_series(values, horizon_days)
        last_day = series["bucket_start"].max().date()
        return pl.DataFrame({
            "agent_id": [agent_id] * horizon_days, "metric": canonical(metric_name),
            "target_date": [last_day + timedelta(days=i + 1) for i in range(horizon_days)],
            "yhat": result.yhat, "yhat_lower_80": result.lower_80, "yhat_upper_80": result.upper_80,
            "yhat_lower_95": result.lower_95, "yhat_upper_95": result.upper_95, "model": result.model,
            "model_reason": result.reason, "history_days": values.size, "backtest_mase": result.backtest_mase,
            "backtest_mase_seasonal_naive": result.backtest_mase_snaive, "backtest_folds": result.backtest_folds,
            "backtest_coverage_80": result.backtest_coverage_80, "backtest_coverage_95": result.backtest_coverage_95,
            "interval_widening_80": result.widening_80, "interval_widening_95": result.widening_95,
        }, schema_overrides={"agent_id": pl.String, "backtest_folds": pl.Int32}).with_columns(pl.col(
            "yhat_lower_80", "yhat_upper_80", "yhat_lower_95", "yhat_upper_95", "backtest_mase",
            "backtest_mase_seasonal_naive", "backtest_coverage_80", "backtest_coverage_95").fill_nan(None))  # fmt: skip

    def budget_status(self, budget: Budget, as_of: date | None = None) -> BudgetBurn:
        """The budget as of the last complete day (of all production traffic, so an agent that
        has not run for days has spent nothing on them)."""
        until = self.complete_until()
        if as_of is None:
            if until is None or self.complete_days() < 1:
                raise NotEnoughHistory(
                    f"budget projections need 1 complete day of cost, the warehouse has {self.complete_days()}",
                    self.complete_days(), 1, "complete days",
                )  # fmt: skip
            as_of = until.date() - timedelta(days=1)
        try:
            series = self.daily_series("cost_usd", budget.agent_id, whole=False)
        except UserError:  # an agent with a budget and no runs yet: nothing spent
            series = pl.DataFrame({"bucket_start": [], "value": []})
        daily = {
            row["bucket_start"].date(): float(row["value"] or 0.0) for row in series.iter_rows(named=True)
        }
        return burn(budget, daily, as_of)

    def compare_versions(self, agent_id: str | None = None) -> list[VersionComparison]:
        where = "not is_benchmark" + (" and agent_id = $agent" if agent_id else "")
        runs = self.db.query(
            # in a fixed order: the bootstrap's fixed seed gives the same intervals for the same runs
            f"select agent_id, agent_version, started_at, is_success, duration_ms, cost_usd "
            f"from marts.fct_agent_runs where {where} order by started_at, run_id",
            {"agent": agent_id} if agent_id else {},
        )
        deployments = None
        if self.db.table_exists("marts", "fct_deployments"):
            deployments = self.db.query(
                "select agent_id, agent_version, deployed_at from marts.fct_deployments"
                + (" where agent_id = $agent" if agent_id else ""),
                {"agent": agent_id} if agent_id else {},
            )
        return compare_versions(runs, deployments)
