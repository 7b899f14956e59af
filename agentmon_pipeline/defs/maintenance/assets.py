"""Retention as an asset on a daily schedule: never as a side effect of ingestion."""

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.storage import connect
from agentmon_pipeline.storage.retention import prune


@dg.asset(
    key=["maintenance", "retention"], group_name="maintenance", kinds={"duckdb"},
    description="Deletes raw and per-call detail older than MONITORING_RETENTION_DAYS (0 keeps everything); "
    "the daily aggregates keep the pruned days.",
)  # fmt: skip
def retention(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    s = settings()
    with connect(s) as con:
        removed = prune(con, s.retention_days)
    context.log.info(f"retention {s.retention_days} days: removed {removed or 'nothing'}")
    return dg.MaterializeResult(
        metadata={"retention_days": s.retention_days, **{k: v for k, v in removed.items()}}
    )


retention_job = dg.define_asset_job("retention_job", selection=[dg.AssetKey(["maintenance", "retention"])])


@dg.schedule(
    name="retention_daily", job=retention_job, cron_schedule="30 3 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 03:30 UTC: prune old detail, when MONITORING_RETENTION_DAYS sets a window.",
)  # fmt: skip
def retention_schedule(context: dg.ScheduleEvaluationContext):
    days = settings().retention_days
    if days <= 0:
        return dg.SkipReason("retention is off (MONITORING_RETENTION_DAYS is not set): everything is kept")
    return dg.RunRequest(tags={"agentmon/retention_days": str(days)})
