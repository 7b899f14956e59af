"""Alerting in Dagster: the `alerts/alerts` asset runs one alerting tick (evaluate the rules,
update the alerts, escalate, send the outbox). Every ingest and benchmark run (and `agentmon run`)
ends with it; the schedule `alerts_escalation` looks every 5 minutes and starts a run only when an
escalation step or a notification retry is due, so an idle UI starts no run."""

import dagster as dg

from agentmon_pipeline.alerting.service import due, tick
from agentmon_pipeline.defs.analytics.assets import analytics_assets
from agentmon_pipeline.defs.evals.assets import SUITES, _key_part
from agentmon_pipeline.errors import WarehouseBusy

ALERTS = dg.AssetKey(["alerts", "alerts"])
UPSTREAM = [
    dg.AssetKey(["marts", "fct_agent_runs"]),
    *(a.key for a in analytics_assets),
    *(dg.AssetKey(["analytics", f"{_key_part(name)}_regressions"]) for name in SUITES),
]


@dg.asset(
    key=ALERTS, deps=UPSTREAM, group_name="alerting", kinds={"python", "duckdb"},
    description="The alert rules of agentmon.yaml evaluated against the marts, analytics and benchmarks; "
    "alerts.alerts holds one alert per (rule, agent, metric), alerts.deliveries the notifications.",
    check_specs=[dg.AssetCheckSpec("no_firing_alerts", asset=ALERTS, description="WARN while an alert is firing.")],
)  # fmt: skip
def alerts(context: dg.AssetExecutionContext):
    result = tick()
    context.log.info(result.line())
    lines = ["| alert | severity | state | rule | what |", "|---|---|---|---|---|"]
    lines += [
        f"| {a['alert_id']} | {a['severity']} | {a['state']} | {a['rule']} | {a['message']} |"
        for a in result.firing
    ]
    firing = [a for a in result.firing if a["state"] == "firing"]
    yield dg.MaterializeResult(metadata={
        "fired": result.evaluation.fired, "resolved": result.evaluation.resolved,
        "escalated": result.evaluation.escalated, "sent": result.delivery.sent,
        "failed_deliveries": result.delivery.failed,
        "open_alerts": dg.MetadataValue.md("\n".join(lines) if result.firing else "none"),
    })  # fmt: skip
    yield dg.AssetCheckResult(check_name="no_firing_alerts", passed=not firing, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"firing": len(firing)})  # fmt: skip


alerts_job = dg.define_asset_job(
    "alerts_job",
    selection=[ALERTS, dg.AssetKey("reports_snapshot")],
    description="One alerting tick, then the reports snapshot (so the Alerts page shows it).",
)


@dg.schedule(
    name="alerts_escalation", job=alerts_job, cron_schedule="*/5 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes, only when something is due: escalate unacknowledged alerts, retry failed "
    "notifications. (Every ingest and benchmark run evaluates the rules itself.)",
)  # fmt: skip
def alerts_schedule(context: dg.ScheduleEvaluationContext):
    try:
        reason = due()
    except WarehouseBusy as exc:
        return dg.SkipReason(f"{exc}; the next tick asks again")
    if reason is None:
        return dg.SkipReason("nothing to escalate or retry")
    return dg.RunRequest(tags={"agentmon/due": reason[:200]})
