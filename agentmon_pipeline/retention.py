"""Retention: raw and per-call detail older than MONITORING_RETENTION_DAYS is deleted.

Never as a side effect of ingestion (importing last year's history must not delete it on
arrival): on the daily schedule `retention_daily` (the asset `maintenance/retention`) and with
`agentmon prune`. The daily aggregates (`marts.agg_agent_daily`) keep the pruned days: that model
only recomputes the days that received new runs, and a full refresh does not rebuild it
(`full_refresh = false`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

# table -> the column holding the event time, for every table of detail
DETAIL = {
    "raw.spans": "start_time",
    "raw.metrics": "time",
    "raw.events": "time",
    "intermediate.int_spans_attributed": "start_time",
    "marts.fct_agent_runs": "started_at",
    "marts.fct_llm_calls": "started_at",
    "marts.fct_tool_calls": "started_at",
    "marts.fct_metrics": "time",
    "marts.fct_events": "time",
    "marts.agg_agent_hourly": "bucket_start",
}


def prune(con: duckdb.DuckDBPyConnection, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete the detail older than the window, in one transaction; 0 keeps everything."""
    if retention_days <= 0:
        return {}
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    existing = {
        f"{s}.{t}"
        for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }
    removed = {}
    con.execute("begin transaction")
    try:
        for table, column in DETAIL.items():
            if table in existing:
                removed[table] = int(
                    con.execute(f"delete from {table} where {column} < ?", [cutoff]).fetchone()[0]
                )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return removed
