"""Retention: raw and per-call detail older than MONITORING_RETENTION_DAYS is deleted. Off by
default (0 keeps everything): a laptop keeps what it was given until the user sets a window.

Never as a side effect of ingestion (importing last year's history must not delete it on
arrival): on the daily schedule `retention_daily` (the asset `maintenance/retention`) and with
`agentmon prune`. The daily aggregates (`marts.agg_agent_daily`) keep the pruned days: that model
only recomputes the days that received new runs, and a full refresh does not rebuild it
(`full_refresh = false`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from agentmon_pipeline.storage import transaction

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


RAW = ("raw.spans", "raw.metrics", "raw.events")


def cutoff_for(retention_days: int, now: datetime | None = None) -> datetime | None:
    """The oldest time the window keeps; None when retention is off."""
    if retention_days <= 0:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


def outside_window(con: duckdb.DuckDBPyConnection, load_ids: list[int], retention_days: int) -> int:
    """Records these loads wrote that are already older than the window: the next prune removes them."""
    cutoff = cutoff_for(retention_days)
    if cutoff is None or not load_ids:
        return 0
    ids = ",".join(str(int(i)) for i in load_ids)
    total = 0
    for table in RAW:
        sql = f"select count(*) from {table} where load_id in ({ids}) and {DETAIL[table]} < ?"
        total += int(con.execute(sql, [cutoff]).fetchone()[0])
    return total


def prune(con: duckdb.DuckDBPyConnection, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete the detail older than the window, in one transaction; 0 keeps everything. The ledger
    records it: per file, how many of its records were pruned and when (`raw.ingested_files.pruned`,
    `pruned_at`), and per pass and table in `raw.retention_log`."""
    cutoff = cutoff_for(retention_days, now)
    if cutoff is None:
        return {}
    now = now or datetime.now(UTC)
    existing = {
        f"{s}.{t}"
        for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }
    removed = {}
    with transaction(con):
        # per file of the ledger, in one statement: how many of its records go
        going = " union all ".join(
            f"select load_id from {table} where {DETAIL[table]} < $cutoff" for table in RAW
        )
        con.execute(
            f"""
            update raw.ingested_files set pruned = coalesce(pruned, 0) + going.n, pruned_at = $now
            from (select load_id, count(*) as n from ({going}) as rows group by load_id) as going
            where raw.ingested_files.load_id = going.load_id
            """,
            {"cutoff": cutoff, "now": now},
        )
        for table, column in DETAIL.items():
            if table in existing:
                removed[table] = int(
                    con.execute(f"delete from {table} where {column} < ?", [cutoff]).fetchone()[0]
                )
                con.execute(
                    "insert into raw.retention_log values (?, ?, ?, ?, ?)",
                    [now, retention_days, cutoff, table, removed[table]],
                )
    return removed
