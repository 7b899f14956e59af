"""One alerting tick, as the Dagster asset, `agentmon run` and `agentmon alerts evaluate` run it:
evaluate the rules, update the alerts, escalate, and send what the outbox holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agentmon_pipeline.alerting.engine import ESCALATING, EvaluationResult, apply, due_steps, observe
from agentmon_pipeline.alerting.outbox import DUE, DeliveryResult, deliver_pending
from agentmon_pipeline.alerting.rules import AlertConfig, parse_alerts
from agentmon_pipeline.config import Settings, load_config_file
from agentmon_pipeline.config import settings as current_settings
from agentmon_pipeline.errors import WarehouseMissing
from agentmon_pipeline.storage import connect, fetch_rows, table_exists


@dataclass
class TickResult:
    evaluation: EvaluationResult
    delivery: DeliveryResult
    firing: list[dict]

    def line(self) -> str:
        e, d = self.evaluation, self.delivery
        return (f"alerts: {e.fired} fired, {e.still_firing} still firing"
                + (f" (and {e.acknowledged} acknowledged, still holding)" if e.acknowledged else "")
                + f", {e.resolved} resolved, {e.escalated} escalated; "
                f"notifications: {d.sent} sent, {d.failed} failed (retried later)")  # fmt: skip


def alert_config(s: Settings | None = None) -> AlertConfig:
    s = s or current_settings()
    return parse_alerts(load_config_file(s).get("alerts"), s.config_file or "agentmon.yaml")


def tick(s: Settings | None = None, now: datetime | None = None, senders=None) -> TickResult:
    s = s or current_settings()
    now = now or datetime.now(UTC)
    config = alert_config(s)
    with connect(s) as con:
        evaluation = apply(con, config, observe(con, config, now), now)
        delivery = deliver_pending(con, config, now, senders)
        firing = fetch_rows(
            con,
            "select alert_id, rule, severity, state, agent_id, metric, value, fire_count, first_seen_at, message "
            "from alerts.alerts where state <> 'resolved' order by first_seen_at",
        )
    return TickResult(evaluation, delivery, firing)


def due(s: Settings | None = None, now: datetime | None = None) -> str | None:
    """Why an alerting tick is due although no data came in: a firing alert reached its next
    escalation step, or a notification waits to be retried. None when nothing is: the escalation
    schedule then starts no run. (New data is judged by the run that ingests it.) Raises
    WarehouseBusy while a run writes: ask again at the next tick."""
    s = s or current_settings()
    now = now or datetime.now(UTC)
    config = alert_config(s)
    try:
        with connect(s, read_only=True, timeout=1.0) as con:
            if not table_exists(con, "alerts", "alerts"):
                return None
            retries = con.execute(f"select count(*) from alerts.deliveries where {DUE}", [now]).fetchone()[0]
            firing = fetch_rows(con, ESCALATING)
    except WarehouseMissing:
        return None
    if retries:
        return f"{retries} notification(s) due to be sent or retried"
    for alert in firing:
        for level, _ in due_steps(alert, config, now)[:1]:
            return f"alert {alert['alert_id']} reached escalation level {level}"
    return None
