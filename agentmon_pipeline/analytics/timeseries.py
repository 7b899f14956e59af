"""Time series over the marts: one row per bucket, empty buckets included (zero runs, not missing).

Run metrics come from `marts.fct_agent_runs` (production traffic: benchmark runs left out); any
other name is looked up in `marts.fct_metrics` (system and business metrics).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage.engines import time_bucket, time_series

GRANULARITIES = {"15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}

# metric -> (SQL over fct_agent_runs in a bucket, value of an empty bucket)
RUN_METRICS: dict[str, tuple[str, float | None]] = {
    "runs": ("count(*)", 0),
    "success_rate": ("avg(is_success::int)", None),
    "error_rate": ("avg((not is_success)::int)", None),
    "retry_rate": ("avg((retry_count > 0)::int)", None),
    "p50_duration_ms": ("percentile_cont(0.5) within group (order by duration_ms)", None),
    "p95_duration_ms": ("percentile_cont(0.95) within group (order by duration_ms)", None),
    "p99_duration_ms": ("percentile_cont(0.99) within group (order by duration_ms)", None),
    "avg_duration_ms": ("avg(duration_ms)", None),
    "total_tokens": ("sum(total_tokens)", 0),
    "input_tokens": ("sum(input_tokens)", 0),
    "output_tokens": ("sum(output_tokens)", 0),
    "cost_usd": ("sum(cost_usd)", 0),
    "llm_calls": ("sum(llm_call_count)", 0),
    "tool_calls": ("sum(tool_call_count)", 0),
}
# rates, with the count of runs they are the share of (for tests that know their sample size)
RATE_EVENTS = {
    "success_rate": "count(*) filter (where is_success)",
    "error_rate": "count(*) filter (where not is_success)",
    "retry_rate": "count(*) filter (where retry_count > 0)",
}
# what each run metric is, for the anomaly detector's noise model (anomalies.py); any other
# metric (latency percentiles, fct_metrics) is a level
KIND = {"runs": "count", **dict.fromkeys(RATE_EVENTS, "rate"),
        **dict.fromkeys(("total_tokens", "input_tokens", "output_tokens", "cost_usd", "llm_calls", "tool_calls"), "sum")}  # fmt: skip
ALIASES = {"tokens": "total_tokens", "agent_execution_duration": "avg_duration_ms", "duration_ms": "avg_duration_ms",
           "cost": "cost_usd", "error_count": "runs"}  # fmt: skip


def canonical(metric: str) -> str:
    return ALIASES.get(metric, metric)


def interval_of(granularity: str) -> str:
    if granularity not in GRANULARITIES:
        raise UserError(f"granularity {granularity!r}: expected one of {', '.join(GRANULARITIES)}")
    return GRANULARITIES[granularity]


def time_series_sql(metric: str, granularity: str, agent_id: str | None, version: str | None, engine) -> str:
    """SQL with named parameters $start, $end (and $metric, $agent_id, $version as used):
    bucket_start, value, n (runs or points in the bucket), k (for rates: the runs counted), every
    bucket in [start, end) present. `engine`: the warehouse's Settings (its engine buckets time)."""
    interval = interval_of(granularity)

    def bucket(expr: str) -> str:
        return time_bucket(engine, interval, expr)

    metric = canonical(metric)
    where = ("" if agent_id is None else " and agent_id = $agent_id") + (
        "" if version is None else " and agent_version = $version"
    )
    if metric in RUN_METRICS:
        expr, empty = RUN_METRICS[metric]
        k = RATE_EVENTS.get(metric, "null::bigint")
        source = f"""
            select {bucket('started_at')} as bucket_start,
                   {expr}::double precision as value, count(*) as n, {k} as k
            from marts.fct_agent_runs
            where not is_benchmark and started_at >= $start and started_at < $end {where}
            group by 1"""
    else:
        empty = None
        source = f"""
            select {bucket('time')} as bucket_start,
                   avg(value)::double precision as value, count(*) as n, null::bigint as k
            from marts.fct_metrics
            where name = $metric and time >= $start and time < $end {where}
            group by 1"""
    fill = "null" if empty is None else str(empty)
    return f"""
        with buckets as (
            select bucket_start
            from {time_series(engine, bucket('$start::timestamptz'), "$end::timestamptz - interval '1 microsecond'", interval)}
        ), data as ({source})
        select buckets.bucket_start, coalesce(data.value, {fill}) as value,
               coalesce(data.n, 0) as n, coalesce(data.k, 0) as k
        from buckets left join data using (bucket_start)
        order by 1
    """


def get_time_series(
    db, metric_name: str, start_time: datetime, end_time: datetime, granularity: str = "1h",
    agent_id: str | None = None, version: str | None = None,
) -> pl.DataFrame:  # fmt: skip
    metric = canonical(metric_name)
    if metric not in RUN_METRICS:
        known = db.scalar("select count(*) from marts.fct_metrics where name = ?", [metric])
        if not known:
            raise UserError(
                f"unknown metric {metric_name!r}: expected one of {', '.join(RUN_METRICS)} "
                "or a metric name in marts.fct_metrics"
            )
    sql = time_series_sql(metric, granularity, agent_id, version, db.settings)
    params = {"start": start_time, "end": end_time}
    if "$metric" in sql:
        params["metric"] = metric
    if agent_id is not None:
        params["agent_id"] = agent_id
    if version is not None:
        params["version"] = version
    return db.query(sql, params).with_columns(pl.lit(metric).alias("metric"))
