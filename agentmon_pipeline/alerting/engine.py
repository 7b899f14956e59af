"""Evaluate the rules, keep one alert per fingerprint, escalate, and queue notifications.

- An observation is a (rule, agent, metric) whose condition holds now; its fingerprint is
  `rule|agent|metric`.
- While a fingerprint keeps being observed it stays one alert: `fire_count` and `last_seen_at`
  grow, nothing new is sent. When it is no longer observed the alert resolves and a resolution is
  sent (if the firing was). A new firing of a fingerprint notified less than the rule's
  `cooldown` ago is recorded but not notified again.
- Escalation: an alert still `firing` (not acknowledged) `after` its first sighting moves to the
  step's severity and notifies the step's channels, once per step.
- Only severities at or above `ALERT_THRESHOLD_SEVERITY` (default `warning`) are notified;
  everything is recorded. Notifications are rows of the outbox (`outbox.py`), sent afterwards.

`now` is a parameter everywhere, so tests move the clock instead of waiting.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from agentmon_pipeline.alerting.rules import SEVERITIES, AlertConfig, Rule, severity_at_least
from agentmon_pipeline.analytics.timeseries import RUN_METRICS
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.numbers import p_value, plain, runs_out
from agentmon_pipeline.storage import fetch_rows, table_exists, transaction

UI_URL = "AGENTMON_UI_URL"
ASSET_OF_KIND = {"metric": "marts/fct_agent_runs", "anomaly": "analytics/anomalies",
                 "regression": "analytics/version_comparisons", "budget": "analytics/budget_burn"}  # fmt: skip


@dataclass
class Observation:
    rule: Rule
    agent_id: str | None
    metric: str | None
    value: float | None
    threshold: float | None
    message: str
    asset: str

    @property
    def fingerprint(self) -> str:
        return f"{self.rule.name}|{self.agent_id or '*'}|{self.metric or '*'}"


def notify_floor() -> str:
    floor = os.environ.get("ALERT_THRESHOLD_SEVERITY", "warning").strip().lower()
    if floor not in SEVERITIES:
        raise UserError(f"ALERT_THRESHOLD_SEVERITY={floor!r}: expected one of {', '.join(SEVERITIES)}")
    return floor


def observe(con: duckdb.DuckDBPyConnection, config: AlertConfig, now: datetime) -> list[Observation]:
    """Every (rule, agent, metric) whose condition holds at `now`."""
    out: list[Observation] = []
    for rule in config.rules:
        if rule.kind == "metric":
            out += _metric(con, rule, now)
        elif rule.kind == "anomaly":
            out += _anomalies(con, rule, now)
        elif rule.kind == "regression":
            out += _regressions(con, rule)
        elif rule.kind == "budget":
            out += _budgets(con, rule)
    return out


def _metric(con, rule: Rule, now: datetime) -> list[Observation]:
    if not table_exists(con, "marts", "fct_agent_runs"):
        return []
    expr = RUN_METRICS[rule.metric][0]
    rows = fetch_rows(con, f"""
        select agent_id, {expr}::double precision as value, count(*) as n
        from marts.fct_agent_runs
        where not is_benchmark and started_at >= $start and started_at < $end and agent_id is not null
        group by agent_id
    """, {"start": now - rule.window, "end": now})  # fmt: skip
    out = []
    for row in rows:
        if not rule.matches(row["agent_id"]) or row["n"] < rule.min_runs or row["value"] is None:
            continue
        if rule.condition.holds(row["value"]):
            message = (f"{rule.metric} of {row['agent_id']} is {plain(row['value'])} over the last {_human(rule.window)} "
                       f"({row['n']} runs), {rule.condition}")  # fmt: skip
            out.append(Observation(rule, row["agent_id"], rule.metric, row["value"], rule.condition.threshold,
                                   message, ASSET_OF_KIND["metric"]))  # fmt: skip
    return out


def _anomalies(con, rule: Rule, now: datetime) -> list[Observation]:
    if not table_exists(con, "analytics", "anomalies"):
        return []
    rows = fetch_rows(con, """
        select agent_id, metric, value, expected, abs(score) as score, bucket_start
        from (
            select *, row_number() over (partition by agent_id, metric
                                         order by abs(score) desc, bucket_start desc) as strongest
            from analytics.anomalies
            where bucket_start >= $since
        ) as recent
        where strongest = 1
    """, {"since": now - rule.window - timedelta(hours=1)})  # fmt: skip
    out = []
    for row in rows:
        if (rule.metric and row["metric"] != rule.metric) or not rule.matches(row["agent_id"] or "*"):
            continue
        scope = row["agent_id"] or "all agents"
        message = (f"{row['metric']} of {scope} was abnormal at {row['bucket_start']:%Y-%m-%d %H:00} UTC: "
                   f"{plain(row['value'])} against {plain(row['expected'])} expected (score {row['score']:.1f})")  # fmt: skip
        out.append(Observation(rule, row["agent_id"], row["metric"], row["value"], row["expected"], message,
                               ASSET_OF_KIND["anomaly"]))  # fmt: skip
    return out


def _regressions(con, rule: Rule) -> list[Observation]:
    out = []
    if table_exists(con, "analytics", "version_comparisons"):
        for row in fetch_rows(con, "select * from analytics.version_comparisons where verdict = 'regressed'"):
            if not rule.matches(row["agent_id"]) or (rule.metric and row["metric"] != rule.metric):
                continue
            message = (f"{row['agent_id']} {row['candidate_version']} regressed on {row['metric']} against "
                       f"{row['baseline_version']}: effect {plain(row['effect'], signed=True)} (95% CI {plain(row['ci_low'], signed=True)} to "
                       f"{plain(row['ci_high'], signed=True)}), {p_value(row['p_adjusted'])}")  # fmt: skip
            out.append(Observation(rule, row["agent_id"], f"{row['metric']}@{row['candidate_version']}", row["effect"],
                                   None, message, ASSET_OF_KIND["regression"]))  # fmt: skip
    if table_exists(con, "analytics", "eval_regressions"):
        for row in fetch_rows(con, "select * from analytics.eval_regressions where verdict = 'regressed'"):
            if not rule.matches(row["suite"]):
                continue
            message = (f"benchmark {row['suite']}: {row['candidate']} regressed on {row['metric']} against "
                       f"{row['baseline']}: effect {plain(row['effect'], signed=True)} (95% CI {plain(row['ci_low'], signed=True)} to "
                       f"{plain(row['ci_high'], signed=True)}), {p_value(row['p_adjusted'])}")  # fmt: skip
            out.append(Observation(rule, row["suite"], f"{row['metric']}@{row['candidate']}", row["effect"], None,
                                   message, f"analytics/{row['suite'].replace('-', '_')}_regressions"))  # fmt: skip
    return out


def _budgets(con, rule: Rule) -> list[Observation]:
    if not table_exists(con, "analytics", "budget_burn"):
        return []
    out = []
    for row in fetch_rows(con, "select * from analytics.budget_burn where status <> 'ok'"):
        scope = row["agent_id"] or "total"
        if row["agent_id"] and not rule.matches(row["agent_id"]):
            continue
        message = (f"budget {scope}: {row['status']}, {row['spend_to_date']:.2f} of {row['budget_usd']:.2f} USD spent, "
                   f"month-end projected {row['projected_month_end']:.2f}"
                   + runs_out(row["runs_out_on"], datetime.now(UTC).date()))  # fmt: skip
        out.append(Observation(rule, row["agent_id"], "budget", row["projected_month_end"], row["budget_usd"],
                               message, ASSET_OF_KIND["budget"]))  # fmt: skip
    return out


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _audit(con, now, alert_id, action, actor=None, detail=None) -> None:
    con.execute("insert into alerts.audit_log values (?, ?, ?, ?, ?)", [now, alert_id, action, actor, detail])


def _payload(alert: dict, event: str, asset: str | None) -> dict:
    base = os.environ.get(UI_URL, "http://127.0.0.1:3000").rstrip("/")
    return {
        "event": event, "alert_id": alert["alert_id"], "rule": alert["rule"], "severity": alert["severity"],
        "state": alert["state"], "agent_id": alert["agent_id"], "metric": alert["metric"], "value": alert["value"],
        "threshold": alert["threshold"], "condition": alert["condition"], "message": alert["message"],
        "first_seen_at": str(alert["first_seen_at"]), "fire_count": alert["fire_count"],
        "resolved_at": str(alert["resolved_at"]) if alert.get("resolved_at") else None,
        "link": f"{base}/assets/{asset}" if asset else base,
    }  # fmt: skip


def _enqueue(con, alert: dict, event: str, channels, now: datetime, asset: str | None) -> int:
    payload = json.dumps(_payload(alert, event, asset), default=str)
    for channel in channels:
        con.execute(
            "insert into alerts.deliveries values (?, ?, ?, ?, ?, 'pending', 0, null, ?, ?, null)",
            [uuid.uuid4().hex[:16], alert["alert_id"], channel, event, payload, now, now],
        )
    return len(channels)


@dataclass
class EvaluationResult:
    fired: int = 0
    still_firing: int = 0
    acknowledged: int = 0  # of the alerts whose condition still holds, those a person acknowledged
    resolved: int = 0
    escalated: int = 0
    queued: int = 0


def apply(
    con: duckdb.DuckDBPyConnection, config: AlertConfig, observations: list[Observation], now: datetime
) -> EvaluationResult:
    """Update alerts.alerts from what holds now; queue the notifications. One transaction."""
    result = EvaluationResult()
    floor = notify_floor()
    rules = {r.name: r for r in config.rules}
    with transaction(con):
        open_alerts = {
            a["fingerprint"]: a
            for a in fetch_rows(con, "select * from alerts.alerts where state <> 'resolved'")
        }
        # when each fingerprint was last notified (its cooldown), in one query for all observations
        last_notified = dict(
            con.execute(
                "select fingerprint, max(last_seen_at) from alerts.alerts where notified group by fingerprint"
            ).fetchall()
        )
        seen = set()
        for obs in observations:
            fp = obs.fingerprint
            seen.add(fp)
            last = last_notified.get(fp)
            # notified means sent somewhere: an alert of a rule without channels is recorded only,
            # so it neither starts a cooldown nor escalates, and adding channels later takes effect
            notify = (
                bool(obs.rule.channels)
                and severity_at_least(obs.rule.severity, floor)
                and (last is None or now - last >= obs.rule.cooldown)
            )
            if fp in open_alerts:
                alert = {**open_alerts[fp], "last_seen_at": now, "value": obs.value, "message": obs.message}
                alert["fire_count"] += 1
                # an alert that fired again within its cooldown was recorded, not sent: once the
                # cooldown has passed and it still holds, it is sent (and escalates from then on),
                # never left silent for as long as the problem lasts
                later = notify and not alert["notified"] and alert["state"] == "firing"
                con.execute(
                    "update alerts.alerts set last_seen_at = ?, fire_count = fire_count + 1, value = ?, message = ?, "
                    "notified = notified or ? where alert_id = ?",
                    [now, obs.value, obs.message, later, alert["alert_id"]],
                )
                if alert["state"] == "acknowledged":
                    result.acknowledged += 1
                else:
                    result.still_firing += 1
                if later:
                    _audit(
                        con,
                        now,
                        alert["alert_id"],
                        "notified",
                        None,
                        "still firing after the rule's cooldown",
                    )
                    result.queued += _enqueue(con, alert, "firing", obs.rule.channels, now, obs.asset)
                continue
            alert = {"alert_id": uuid.uuid4().hex[:12], "fingerprint": fp, "rule": obs.rule.name, "kind": obs.rule.kind,
                     "severity": obs.rule.severity, "state": "firing", "agent_id": obs.agent_id, "metric": obs.metric,
                     "value": obs.value, "threshold": obs.threshold,
                     "condition": str(obs.rule.condition) if obs.rule.condition else None, "message": obs.message,
                     "first_seen_at": now, "last_seen_at": now, "fire_count": 1, "escalation_level": 0,
                     "notified": notify}  # fmt: skip
            con.execute(
                f"insert into alerts.alerts ({', '.join(alert)}) values ({', '.join(['?'] * len(alert))})",
                list(alert.values()),
            )
            _audit(con, now, alert["alert_id"], "fired", None, obs.message)
            result.fired += 1
            if notify:
                result.queued += _enqueue(con, alert, "firing", obs.rule.channels, now, obs.asset)
        for fp, alert in open_alerts.items():
            if fp in seen:
                continue
            result.resolved += 1
            result.queued += _resolve(con, alert, rules.get(alert["rule"]), now, None,
                                      "the condition no longer holds", "resolved: the condition no longer holds")  # fmt: skip
        result.escalated, queued = _escalate(con, config, now, floor)
        result.queued += queued
    return result


ESCALATING = "select * from alerts.alerts where state = 'firing' and notified"


def due_steps(alert: dict, config: AlertConfig, now: datetime) -> list[tuple[int, Any]]:
    """The escalation steps (level, step) an alert has reached and not taken yet."""
    return [(level, step) for level, step in enumerate(config.escalation, start=1)
            if alert["escalation_level"] < level and now - alert["first_seen_at"] >= step.after]  # fmt: skip


def _escalate(con, config: AlertConfig, now: datetime, floor: str) -> tuple[int, int]:
    escalated = queued = 0
    # only alerts that were notified escalate: an info alert below the notification floor stays quiet
    for alert in fetch_rows(con, ESCALATING):
        for level, step in due_steps(alert, config, now):
            con.execute("update alerts.alerts set escalation_level = ?, severity = ? where alert_id = ?",
                        [level, step.severity, alert["alert_id"]])  # fmt: skip
            alert = {**alert, "escalation_level": level, "severity": step.severity}
            _audit(
                con,
                now,
                alert["alert_id"],
                "escalated",
                None,
                f"level {level}: {step.severity} after {_human(step.after)}",
            )
            escalated += 1
            if severity_at_least(step.severity, floor):
                queued += _enqueue(
                    con, alert, "escalated", step.channels, now, ASSET_OF_KIND.get(alert["kind"])
                )
    return escalated, queued


def acknowledge(con, alert_id: str, by: str, note: str | None, now: datetime) -> None:
    row = con.execute("select state from alerts.alerts where alert_id = ?", [alert_id]).fetchone()
    if row is None:
        raise UserError(f"no alert {alert_id!r}; `agentmon alerts list` shows them")
    if row[0] == "resolved":
        raise UserError(f"alert {alert_id} is already resolved")
    con.execute("update alerts.alerts set state = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?, ack_note = ? "
                "where alert_id = ?", [by, now, note, alert_id])  # fmt: skip
    _audit(con, now, alert_id, "acknowledged", by, note)


def resolve(con, alert_id: str, by: str | None, now: datetime, config: AlertConfig | None = None) -> int:
    """Resolve an alert by hand; an alert that was sent gets its resolution sent too (through the
    channels of its rule in `config`). Returns the notifications queued."""
    rows = fetch_rows(con, "select * from alerts.alerts where alert_id = ?", [alert_id])
    if not rows:
        raise UserError(f"no alert {alert_id!r}; `agentmon alerts list` shows them")
    [alert] = rows
    if alert["state"] == "resolved":
        raise UserError(f"alert {alert_id} is already resolved")
    rule = {r.name: r for r in config.rules}.get(alert["rule"]) if config else None
    return _resolve(con, alert, rule, now, by, "by hand", f"resolved by hand{f' by {by}' if by else ''}")


def _resolve(
    con, alert: dict, rule: Rule | None, now: datetime, by: str | None, detail: str, how: str
) -> int:
    """Mark the alert resolved (by the evaluation or by hand) and, if it was sent, queue its
    resolution through its rule's channels. The last value seen is the one that fired: the
    message says so, and when it cleared. Returns the notifications queued."""
    con.execute(
        "update alerts.alerts set state = 'resolved', resolved_at = ? where alert_id = ?",
        [now, alert["alert_id"]],
    )
    _audit(con, now, alert["alert_id"], "resolved", by, detail)
    if not (alert["notified"] and rule is not None):
        return 0
    resolved = {**alert, "state": "resolved", "resolved_at": now,
                "message": f"{how} (last seen firing: {alert['message']})"}  # fmt: skip
    return _enqueue(con, resolved, "resolved", rule.channels, now, ASSET_OF_KIND.get(alert["kind"]))
