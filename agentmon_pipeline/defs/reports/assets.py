"""The reports snapshot as an asset: what the Evidence pages query, written after the marts, the
analytics, the benchmarks and the alerts, so `make reports` never opens the live warehouse."""

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.outputs.reports import headlines, snapshot_path, write_snapshot
from agentmon_pipeline.storage import connect

MARTS = ("agg_agent_daily", "agg_agent_hourly", "dim_agents", "dim_agent_versions", "fct_deployments",
         "fct_llm_calls", "fct_tool_calls", "fct_agent_runs", "agg_eval_scores")  # fmt: skip
ANALYTICS = ("anomalies", "forecasts", "budget_burn", "version_comparisons")


@dg.asset(
    key="reports_snapshot",
    deps=[*(["marts", m] for m in MARTS), *(["analytics", a] for a in ANALYTICS), ["alerts", "alerts"]],
    group_name="reports",
    kinds={"duckdb", "evidence"},
    description="The tables the Evidence reports (reports/) query, in a DuckDB file Evidence can open "
    "($AGENTMON_HOME/reports/agentmon.duckdb, v1.0.0 storage), written atomically.",
)
def reports_snapshot(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    s = settings()
    path = snapshot_path(s)
    with connect(s, read_only=True) as con:
        counts = write_snapshot(con, path)
        numbers = headlines(con)
    lines = ["| table | rows |", "|---|---|"] + [f"| {t} | {n} |" for t, n in counts.items()]
    context.log.info(f"reports snapshot: {sum(counts.values())} rows in {len(counts)} tables at {path}")
    return dg.MaterializeResult(metadata={
        "path": str(path), "tables": len(counts), "rows": sum(counts.values()),
        "bytes": path.stat().st_size, "rows_per_table": dg.MetadataValue.md("\n".join(lines)), **numbers,
    })  # fmt: skip
