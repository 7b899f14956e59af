"""The reports snapshot: what the Evidence pages (`reports/`) query, copied out of the warehouse
into a DuckDB file Evidence can open, so that dashboards never open the live warehouse.

Evidence's DuckDB driver reads the v1.0.0 storage format, not DuckDB 2.0's default, and its
in-browser engine is DuckDB 0.9: the snapshot is attached with `STORAGE_VERSION 'v1.0.0'` and
its columns are plain types (timestamps in UTC without time zone, counts as BIGINT, JSON and lists
as text). An empty table holds one row of nulls (Evidence cannot read an empty source); every page
query filters on a key column that is never null in real rows. It is written under a temporary name and renamed, so a build never sees half of it.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from agentmon_pipeline.config import Settings
from agentmon_pipeline.storage.engines import in_duckdb

# name -> query over the warehouse. Production only (benchmark calls have their own tables).
# The end of the complete hours, as the analytics judge them (AnalyticsEngine.complete_until): the
# current hour, and the hour of the latest production run until an hour after its end, still fill.
COMPLETE_UNTIL = """(
    select least(date_trunc('hour', now()),
                 case when now() >= date_trunc('hour', max(started_at)) + interval 2 hour
                      then date_trunc('hour', max(started_at)) + interval 1 hour
                      else date_trunc('hour', max(started_at)) end)
    from marts.fct_agent_runs where not is_benchmark
)"""
SNAPSHOT_TABLES: dict[str, str] = {
    "agent_daily": f"""
        select * exclude (last_trace_load_id),
               coalesce(bucket_start + interval 1 day > {COMPLETE_UNTIL}, true) as is_partial
        from marts.agg_agent_daily
    """,
    "agent_hourly": f"""
        select *, coalesce(bucket_start + interval 1 hour > {COMPLETE_UNTIL}, true) as is_partial
        from marts.agg_agent_hourly
        where bucket_start >= (select max(bucket_start) from marts.agg_agent_hourly) - interval 14 days
    """,
    "agents": "select * from marts.dim_agents",
    "agent_versions": "select * from marts.dim_agent_versions",
    "deployments": "select * from marts.fct_deployments",
    "llm_daily": """
        select date_trunc('day', started_at) as day, model, provider, count(*) as calls,
               count(*) filter (where status = 'error') as errors, sum(input_tokens) as input_tokens,
               sum(output_tokens) as output_tokens, sum(total_tokens) as total_tokens, sum(cost_usd) as cost_usd,
               count(*) filter (where cost_source = 'unknown_model') as unpriced_calls,
               quantile_cont(duration_ms, 0.5) as p50_duration_ms, quantile_cont(duration_ms, 0.95) as p95_duration_ms
        from marts.fct_llm_calls where not is_benchmark
        group by all
    """,
    "tool_daily": """
        select date_trunc('day', t.started_at) as day, t.agent_id, t.tool_name, count(*) as calls,
               count(*) filter (where t.status = 'error') as errors,
               quantile_cont(t.duration_ms, 0.5) as p50_duration_ms, quantile_cont(t.duration_ms, 0.95) as p95_duration_ms
        from marts.fct_tool_calls t
        join marts.fct_agent_runs r on r.run_id = t.run_id and not r.is_benchmark
        group by all
    """,
    "errors_daily": """
        select date_trunc('day', started_at) as day, agent_id, agent_version,
               coalesce(error_type, 'unknown') as error_type, count(*) as failed_runs
        from marts.fct_agent_runs where not is_success and not is_benchmark
        group by all
    """,
    "recent_failures": """
        select run_id, agent_id, agent_version, started_at, duration_ms, error_type, error_span_count, cost_usd
        from marts.fct_agent_runs where not is_success and not is_benchmark
        order by started_at desc limit 200
    """,
    "anomalies": "select * from analytics.anomalies",
    "forecasts": "select * from analytics.forecasts",
    "budget_burn": "select * from analytics.budget_burn",
    "version_comparisons": "select * from analytics.version_comparisons",
    "eval_scores": "select * from marts.agg_eval_scores",
    "eval_regressions": "select * from analytics.eval_regressions",
    "eval_runs": "select * from evals.runs",
    "alerts": "select * exclude (fingerprint) from alerts.alerts",
    "deliveries": "select * exclude (payload) from alerts.deliveries",
    "alert_history": "select * from alerts.audit_log",
}


def _plain(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """`sql` with every column cast to a type Evidence and DuckDB 0.9 read the same way."""
    columns = con.execute(f"describe {sql}").fetchall()
    out = []
    for name, kind, *_ in columns:
        ident = '"' + name.replace('"', '""') + '"'
        if kind == "TIMESTAMP WITH TIME ZONE":
            out.append(f"cast({ident} as timestamp) as {ident}")  # the session is in UTC
        elif kind in ("HUGEINT", "UBIGINT"):
            out.append(f"cast({ident} as bigint) as {ident}")
        elif kind == "JSON" or kind.startswith(("STRUCT", "MAP", "UNION")):
            out.append(f"cast({ident} as varchar) as {ident}")
        elif kind.endswith("[]"):
            out.append(f"array_to_string({ident}, ', ') as {ident}")
        else:
            out.append(ident)
    return f"select {', '.join(out)} from ({sql})"


def snapshot_path(s: Settings) -> Path:
    return s.home / "reports" / "agentmon.duckdb"


def write_snapshot(
    con: duckdb.DuckDBPyConnection, target: Path, now: datetime | None = None
) -> dict[str, int]:
    """Copy SNAPSHOT_TABLES out of the warehouse `con` into `target`, atomically; row counts.

    From PostgreSQL, the tables the snapshot reads are first copied into an in-memory DuckDB, so
    the snapshot is made by the same queries from the same rows."""
    wanted = re.findall(r"\b(marts|analytics|evals|alerts)\.(\w+)", " ".join(SNAPSHOT_TABLES.values()))
    with in_duckdb(con, wanted) as duck:
        return _write_snapshot(duck, target, now)


def _write_snapshot(con: duckdb.DuckDBPyConnection, target: Path, now: datetime | None) -> dict[str, int]:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"attach '{temp}' as snapshot (storage_version 'v1.0.0', read_write)")
    counts: dict[str, int] = {}
    try:
        for name, sql in SNAPSHOT_TABLES.items():
            con.execute(f"create table snapshot.{name} as {_plain(con, sql)}")
            counts[name] = con.execute(f"select count(*) from snapshot.{name}").fetchone()[0]
            if counts[name] == 0:
                # Evidence cannot read an empty source (it writes a Parquet file too small to
                # open): an empty table holds one row of nulls, which the pages filter out
                con.execute(f"insert into snapshot.{name} default values")
        taken = now or datetime.now(UTC)
        con.execute(
            "create table snapshot.snapshot_info as select cast(? as timestamp) as taken_at, "
            "(select cast(max(bucket_start) as timestamp) from marts.agg_agent_hourly) as data_end, "
            f"cast({COMPLETE_UNTIL} as timestamp) as complete_until",
            [
                taken.replace(tzinfo=None)
                if taken.tzinfo is None
                else taken.astimezone(UTC).replace(tzinfo=None)
            ],
        )
    except BaseException:
        con.execute("detach snapshot")
        temp.unlink(missing_ok=True)
        raise
    con.execute("detach snapshot")
    os.replace(temp, target)
    return counts


def copy_snapshot(s: Settings, dest: Path) -> Path:
    """Copy the latest snapshot to `dest` (where Evidence's source points), atomically."""
    import shutil

    from agentmon_pipeline.errors import UserError

    source = snapshot_path(s)
    if not source.exists():
        raise UserError(
            f"no reports snapshot at {source}: run the pipeline first (make demo, make run or agentmon run)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, temp)
    os.replace(temp, dest)
    return dest


HEADLINES = """
    select
        count(*) as runs_24h,
        avg(case when is_success then 1.0 else 0.0 end) as success_rate_24h,
        percentile_cont(0.95) within group (order by duration_ms) as p95_duration_ms_24h,
        coalesce(sum(cost_usd), 0) as cost_usd_24h,
        coalesce(sum(total_tokens), 0) as total_tokens_24h
    from marts.fct_agent_runs
    where not is_benchmark
        and started_at > (select max(started_at) from marts.fct_agent_runs where not is_benchmark) - interval '1 day'
"""


def headlines(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """The last 24 hours of production in numbers, and what is open: numeric metadata that the
    Dagster UI plots across materializations."""
    cursor = con.execute(HEADLINES)
    names = [d[0] for d in cursor.description]
    out = {n: float(v) for n, v in zip(names, cursor.fetchone(), strict=True) if v is not None}
    out["alerts_firing"] = float(
        con.execute("select count(*) from alerts.alerts where state = 'firing'").fetchone()[0]
    )
    out["versions_regressed"] = float(con.execute(
        "select count(distinct agent_id || '|' || candidate_version) from analytics.version_comparisons "
        "where verdict = 'regressed'"
    ).fetchone()[0])  # fmt: skip
    return out
