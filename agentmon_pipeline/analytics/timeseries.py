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


def _filters(agent_id: str | None, version: str | None) -> str:
    return ("" if agent_id is None else " and agent_id = $agent_id") + (
        "" if version is None else " and agent_version = $version"
    )


def _every_bucket(engine, interval: str, source: str, columns: list[str]) -> str:
    """`source`'s rows (bucket_start, then `columns`) on every bucket of [$start, $end), in order;
    `columns` are SQL over `data` (what an empty bucket gets: coalesce(...))."""
    first = time_bucket(engine, interval, "$start::timestamptz")
    return f"""
        with buckets as (
            select bucket_start
            from {time_series(engine, first, "$end::timestamptz - interval '1 microsecond'", interval)}
        ), data as ({source})
        select buckets.bucket_start, {", ".join(columns)}
        from buckets left join data using (bucket_start)
        order by 1
    """


def run_series_sql(
    metrics: list[str], granularity: str, agent_id: str | None, version: str | None, engine
) -> str:
    """Several run metrics in one pass over marts.fct_agent_runs (parameters as
    `time_series_sql`): bucket_start, n, and per metric m the columns "m" (its value) and "k_m"
    (for rates: the runs counted, else 0)."""
    interval = interval_of(granularity)
    bucket = time_bucket(engine, interval, "started_at")
    values = ", ".join(f'{RUN_METRICS[m][0]}::double precision as "{m}", {RATE_EVENTS.get(m, "null::bigint")} as "k_{m}"'
                       for m in metrics)  # fmt: skip
    source = f"""
            select {bucket} as bucket_start, count(*) as n, {values}
            from marts.fct_agent_runs
            where not is_benchmark and started_at >= $start and started_at < $end {_filters(agent_id, version)}
            group by 1"""
    fill = {m: "null" if RUN_METRICS[m][1] is None else str(RUN_METRICS[m][1]) for m in metrics}
    columns = ["coalesce(data.n, 0) as n"] + [
        f'coalesce(data."{m}", {fill[m]}) as "{m}", coalesce(data."k_{m}", 0) as "k_{m}"' for m in metrics
    ]
    return _every_bucket(engine, interval, source, columns)


def time_series_sql(metric: str, granularity: str, agent_id: str | None, version: str | None, engine) -> str:
    """SQL with named parameters $start, $end (and $metric, $agent_id, $version as used):
    bucket_start, value, n (runs or points in the bucket), k (for rates: the runs counted), every
    bucket in [start, end) present. `engine`: the warehouse's Settings (its engine buckets time)."""
    interval = interval_of(granularity)
    metric = canonical(metric)
    if metric in RUN_METRICS:
        return f"""select bucket_start, "{metric}" as value, n, "k_{metric}" as k
                   from ({run_series_sql([metric], granularity, agent_id, version, engine)}) as runs
                   order by 1"""
    source = f"""
            select {time_bucket(engine, interval, "time")} as bucket_start,
                   avg(value)::double precision as value, count(*) as n, null::bigint as k
            from marts.fct_metrics
            where name = $metric and time >= $start and time < $end {_filters(agent_id, version)}
            group by 1"""
    return _every_bucket(
        engine, interval, source, ["data.value", "coalesce(data.n, 0) as n", "coalesce(data.k, 0) as k"]
    )


def series_params(start_time: datetime, end_time: datetime, metric: str | None, agent_id: str | None,
                  version: str | None) -> dict:  # fmt: skip
    params = {"start": start_time, "end": end_time}
    if metric is not None:
        params["metric"] = metric
    if agent_id is not None:
        params["agent_id"] = agent_id
    if version is not None:
        params["version"] = version
    return params


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
    params = series_params(start_time, end_time, None if metric in RUN_METRICS else metric, agent_id, version)
    return db.query(sql, params).with_columns(pl.lit(metric).alias("metric"))
