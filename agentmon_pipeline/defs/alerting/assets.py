"""Alerting in Dagster: the `alerts/alerts` asset runs one alerting tick (evaluate the rules,
update the alerts, escalate, send the outbox); a sensor runs it after every successful ingest or
benchmark run, a schedule every 5 minutes for escalation and retries, and `agentmon run` as its
last step."""

import dagster as dg

from agentmon_pipeline.alerting.service import tick
from agentmon_pipeline.defs.analytics.assets import analytics_assets
from agentmon_pipeline.defs.evals.assets import SUITES, _key_part

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


def build_alerts_sensor(monitored_jobs) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="alerts_sensor", run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=monitored_jobs,
        request_job=alerts_job, default_status=dg.DefaultSensorStatus.RUNNING,
        description="After every successful ingest or benchmark run, evaluate the alert rules.",
    )  # fmt: skip
    def alerts_sensor(context: dg.RunStatusSensorContext):
        return dg.RunRequest(run_key=f"alerts-after-{context.dagster_run.run_id}")

    return alerts_sensor


alerts_schedule = dg.ScheduleDefinition(
    name="alerts_escalation", job=alerts_job, cron_schedule="*/5 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: escalate unacknowledged alerts and retry failed notifications.",
)  # fmt: skip
