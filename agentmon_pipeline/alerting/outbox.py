"""Delivery: the outbox rows of alerts.deliveries, sent to Slack, email and webhooks.

A notification is sent once: a row goes from `pending` to `sent` only after its channel
accepted it. A failure keeps the row pending with its attempts, last error and the time of the
next attempt (30 s, doubling, at most an hour), so nothing is lost while a channel is down.
Secrets come from the environment at send time (`${NAME}` in agentmon.yaml) and are blanked out
of any error that is stored or logged.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from html import escape

import duckdb
from agentmon_sdk.webhooks import SIGNATURE_HEADER, post_json, signature

from agentmon_pipeline.alerting.rules import AlertConfig, resolve_env
from agentmon_pipeline.numbers import plain

SEVERITY_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "error": ":red_circle:",
    "critical": ":rotating_light:",
}
MAX_BACKOFF = timedelta(hours=1)


def title(payload: dict) -> str:
    event = {"firing": "FIRING", "resolved": "RESOLVED", "escalated": "ESCALATED"}[payload["event"]]
    scope = payload["agent_id"] or "all agents"
    return f"[{event}] [{payload['severity'].upper()}] {payload['rule']}: {scope}"


def slack_body(payload: dict) -> dict:
    value = "-" if payload["value"] is None else plain(payload["value"])
    against = payload["condition"] or ("-" if payload["threshold"] is None else plain(payload["threshold"]))
    return {
        "text": title(payload),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title(payload)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{SEVERITY_EMOJI[payload['severity']]} {payload['message']}"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{payload['severity']}"},
                {"type": "mrkdwn", "text": f"*Agent*\n{payload['agent_id'] or 'all agents'}"},
                {"type": "mrkdwn", "text": f"*Value*\n{value}"},
                {"type": "mrkdwn", "text": f"*Threshold*\n{against}"},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{payload['link']}|Open in Dagster> · alert `{payload['alert_id']}`"}]},
        ],
    }  # fmt: skip


def send_slack(settings: dict, payload: dict) -> None:
    url = resolve_env(settings["webhook_url"], "slack.webhook_url")
    post_json(url, json.dumps(slack_body(payload)).encode(), {}, float(settings.get("timeout_s", 10)))


def send_webhook(settings: dict, payload: dict) -> None:
    url = resolve_env(settings["url"], "webhook.url")
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {}
    if settings.get("secret"):
        headers[SIGNATURE_HEADER] = signature(resolve_env(settings["secret"], "webhook.secret"), body)
    post_json(url, body, headers, float(settings.get("timeout_s", 10)))


def send_email(settings: dict, payload: dict) -> None:
    to = resolve_env(settings["to"], "email.to")
    message = EmailMessage()
    message["Subject"] = title(payload)
    message["From"] = resolve_env(settings["from"], "email.from")
    message["To"] = ", ".join(to if isinstance(to, list) else [to])
    text = f"{payload['message']}\n\nseverity: {payload['severity']}\nagent: {payload['agent_id'] or 'all agents'}\n" \
           f"value: {payload['value']}\nthreshold: {payload['condition'] or payload['threshold']}\n" \
           f"alert: {payload['alert_id']}\n{payload['link']}\n"  # fmt: skip
    message.set_content(text)
    message.add_alternative(
        f"<h3>{escape(title(payload))}</h3><p>{escape(payload['message'])}</p>"
        f'<p><a href="{escape(payload["link"])}">Open in Dagster</a> · alert <code>{escape(payload["alert_id"])}</code></p>',
        subtype="html",
    )
    host = resolve_env(settings["smtp_host"], "email.smtp_host")
    port = int(resolve_env(settings.get("smtp_port", 587), "email.smtp_port"))
    with smtplib.SMTP(host, port, timeout=float(settings.get("timeout_s", 10))) as smtp:
        if settings.get("starttls", True):
            # the server's certificate is verified; `ca_file` trusts a private CA (a self-hosted relay)
            context = ssl.create_default_context(cafile=settings.get("ca_file"))
            smtp.starttls(context=context)
        if settings.get("username"):
            smtp.login(
                resolve_env(settings["username"], "email.username"),
                resolve_env(settings.get("password", ""), "email.password"),
            )
        smtp.send_message(message)


SENDERS: dict[str, Callable[[dict, dict], None]] = {
    "slack": send_slack,
    "webhook": send_webhook,
    "email": send_email,
}


def _secrets(settings: dict) -> list[str]:
    values = []
    for key in ("webhook_url", "url", "secret", "password", "username"):
        if settings.get(key):
            try:
                values.append(str(resolve_env(settings[key], key)))
            except LookupError:
                continue
    return [v for v in values if len(v) >= 4]


def _redacted(error: str, settings: dict) -> str:
    for secret in _secrets(settings):
        error = error.replace(secret, "***")
    return error[:500]


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0


DUE = "state = 'pending' and next_attempt_at <= ?"  # a notification to send or retry now


def deliver_pending(con: duckdb.DuckDBPyConnection, config: AlertConfig, now: datetime,
                    senders: dict[str, Callable[[dict, dict], None]] | None = None) -> DeliveryResult:  # fmt: skip
    senders = senders or SENDERS
    result = DeliveryResult()
    rows = con.execute(
        f"select delivery_id, channel, payload, attempts from alerts.deliveries where {DUE} order by created_at",
        [now],
    ).fetchall()
    for delivery_id, channel, payload, attempts in rows:
        settings = config.channels.get(channel)
        try:
            if settings is None:
                raise LookupError(f"channel {channel!r} is no longer defined under alerts.channels")
            senders[settings["type"]](settings, json.loads(payload))
        except Exception as exc:  # noqa: BLE001 - any failure of a channel is retried later
            error = _redacted(f"{type(exc).__name__}: {exc}", settings or {})
            backoff = min(timedelta(seconds=30 * 2**attempts), MAX_BACKOFF)
            con.execute("update alerts.deliveries set attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                        "where delivery_id = ?", [error, now + backoff, delivery_id])  # fmt: skip
            result.failed += 1
            continue
        con.execute("update alerts.deliveries set state = 'sent', attempts = attempts + 1, sent_at = ?, last_error = null "
                    "where delivery_id = ?", [now, delivery_id])  # fmt: skip
        result.sent += 1
    return result
