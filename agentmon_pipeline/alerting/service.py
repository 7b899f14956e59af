"""One alerting tick, as the Dagster asset, `agentmon run` and `agentmon alerts evaluate` run it:
evaluate the rules, update the alerts, escalate, and send what the outbox holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agentmon_pipeline.alerting.engine import EvaluationResult, apply, observe
from agentmon_pipeline.alerting.outbox import DeliveryResult, deliver_pending
from agentmon_pipeline.alerting.rules import AlertConfig, parse_alerts
from agentmon_pipeline.config import Settings, load_config_file
from agentmon_pipeline.config import settings as current_settings
from agentmon_pipeline.warehouse import connect, fetch_rows


@dataclass
class TickResult:
    evaluation: EvaluationResult
    delivery: DeliveryResult
    firing: list[dict]

    def line(self) -> str:
        e, d = self.evaluation, self.delivery
        return (f"alerts: {e.fired} fired, {e.still_firing} still firing, {e.resolved} resolved, {e.escalated} escalated; "
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
