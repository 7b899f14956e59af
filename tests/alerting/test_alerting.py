"""Alerting end to end over loopback: rules fire once, deliver once, retry, escalate, resolve."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
import yaml

from agentmon_pipeline.alerting.rules import parse_alerts
from agentmon_pipeline.alerting.service import tick
from agentmon_pipeline.app.cli import main
from agentmon_pipeline.config import settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage import connect

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "s3cret-webhook-key"


def write_config(tmp_path, monkeypatch, receiver, smtp, extra_rules=()):
    config = {
        "alerts": {
            "rules": [
                {"name": "high-error-rate", "metric": "error_rate", "agent": "bot-*", "window": "1h",
                 "condition": "> 0.1", "min_runs": 20, "severity": "error", "cooldown": "1h",
                 "channels": ["slack", "email", "webhook"]},
                {"name": "chatty", "metric": "runs", "condition": "> 0", "severity": "info", "channels": ["slack"]},
                *extra_rules,
            ],
            "escalation": [{"after": "30m", "severity": "critical", "channels": ["webhook"]}],
            "channels": {
                "slack": {"webhook_url": "${TEST_SLACK_URL}"},
                "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp["port"], "starttls": True, "ca_file": smtp["ca_file"],
                          "from": "alerts@example.com", "to": ["oncall@example.com"]},
                "webhook": {"url": f"{receiver.url}/hook", "secret": "${TEST_WEBHOOK_SECRET}"},
            },
        }
    }  # fmt: skip
    path = tmp_path / "agentmon.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("AGENTMON_CONFIG", str(path))
    monkeypatch.setenv("TEST_SLACK_URL", f"{receiver.url}/slack")
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("AGENTMON_UI_URL", "http://dagster.example:3000")
    return path


def add_runs(agent: str, n: int, errors: int, at: datetime) -> None:
    with connect(settings()) as con:
        con.execute("""create table if not exists marts.fct_agent_runs (agent_id varchar, started_at timestamptz,
            is_success boolean, retry_count integer, duration_ms double, total_tokens bigint, input_tokens bigint,
            output_tokens bigint, cost_usd double, llm_call_count integer, tool_call_count integer, is_benchmark boolean)""")
        for i in range(n):
            con.execute("insert into marts.fct_agent_runs values (?, ?, ?, 0, 100, 10, 5, 5, 0.01, 1, 0, false)",
                        [agent, at + timedelta(seconds=i), i >= errors])  # fmt: skip


def clear_runs() -> None:
    with connect(settings()) as con:
        con.execute("delete from marts.fct_agent_runs")


def alerts() -> list[dict]:
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    cursor = con.execute("select * from alerts.alerts order by first_seen_at, rule")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    con.close()
    return rows


def test_fire_once_deliver_everywhere_retry_escalate_resolve(
    home, tmp_path, monkeypatch, receiver, smtp_server
):
    write_config(tmp_path, monkeypatch, receiver, smtp_server)
    add_runs("bot-a", 30, errors=15, at=NOW - timedelta(minutes=10))  # 50% errors: fires
    add_runs("bot-b", 5, errors=5, at=NOW - timedelta(minutes=10))  # 100%, but 5 runs < min_runs: no alert
    receiver.down["/slack"] = 2  # Slack is down for the first two attempts

    first = tick(now=NOW)
    assert first.evaluation.fired == 3  # high-error-rate for bot-a; chatty (info) for both agents
    firing = [a for a in alerts() if a["rule"] == "high-error-rate"]
    assert len(firing) == 1 and firing[0]["agent_id"] == "bot-a" and firing[0]["value"] == 0.5
    assert first.delivery.sent == 2 and first.delivery.failed == 1  # info is recorded, not notified
    # the failure is said where the user looks: the run summary and `agentmon status`
    from agentmon_pipeline.app.runner import failing_deliveries, status_report

    with connect(settings(), read_only=True) as con:
        count, error = failing_deliveries(con)
    assert count == 1 and error.startswith("slack: ") and "503" in error
    assert "notifications  1 not delivered yet (retried on later runs); latest: slack: " in status_report()

    # email over STARTTLS, with text and HTML parts
    [mail] = smtp_server["mailbox"].messages
    assert mail["tls"] and mail["to"] == ["oncall@example.com"]
    assert mail["message"]["Subject"] == "[FIRING] [ERROR] high-error-rate: bot-a"
    assert {p.get_content_type() for p in mail["message"].walk()} >= {"text/plain", "text/html"}
    # the webhook, signed
    [hook] = [p for p in receiver.posts if p["path"] == "/hook"]
    expected = "sha256=" + hmac.new(SECRET.encode(), hook["body"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Agentmon-Signature"] == expected
    assert (
        hook["json"]["event"] == "firing"
        and hook["json"]["link"] == "http://dagster.example:3000/assets/marts/fct_agent_runs"
    )

    # still true a minute and three minutes later: nothing new; Slack comes back on its retry
    assert tick(now=NOW + timedelta(minutes=1)).delivery.failed == 1  # second attempt, still down
    later = tick(now=NOW + timedelta(minutes=3))
    assert later.evaluation.fired == 0 and later.evaluation.still_firing == 3 and later.delivery.sent == 1
    slack = [p for p in receiver.posts if p["path"] == "/slack"]
    assert (
        len(slack) == 1
        and slack[0]["json"]["blocks"][0]["text"]["text"] == "[FIRING] [ERROR] high-error-rate: bot-a"
    )
    assert (
        len(smtp_server["mailbox"].messages) == 1
        and len([p for p in receiver.posts if p["path"] == "/hook"]) == 1
    )
    [alert] = [a for a in alerts() if a["rule"] == "high-error-rate"]
    assert alert["fire_count"] == 3
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    stored = con.execute(
        "select payload::varchar, coalesce(last_error, '') from alerts.deliveries"
    ).fetchall()
    con.close()
    assert not any(SECRET in p or SECRET in e or "/slack" in e for p, e in stored)  # secrets are not stored

    # 31 minutes after it fired, unacknowledged: escalated to critical, once, to the webhook
    escalation = tick(now=NOW + timedelta(minutes=31))
    assert escalation.evaluation.escalated >= 1
    hooks = [p["json"] for p in receiver.posts if p["path"] == "/hook"]
    assert [h["event"] for h in hooks] == ["firing", "escalated"] and hooks[1]["severity"] == "critical"
    tick(now=NOW + timedelta(minutes=35))
    assert len([p for p in receiver.posts if p["path"] == "/hook"]) == 2

    # the condition clears (no runs in the last hour): resolved, and a resolution is sent
    resolved = tick(now=NOW + timedelta(hours=1, minutes=15))
    assert resolved.evaluation.resolved == 3
    assert [p["json"]["text"] for p in receiver.posts if p["path"] == "/slack"][-1].startswith("[RESOLVED]")
    resolution = [p["json"] for p in receiver.posts if p["path"] == "/hook"][-1]
    assert resolution["event"] == "resolved" and resolution["resolved_at"]
    assert resolution["message"].startswith("resolved: the condition no longer holds (last seen firing: ")
    assert all(a["state"] == "resolved" for a in alerts())

    # it fires again within the cooldown (1h since the notified alert was last seen): recorded, not notified
    add_runs("bot-a", 30, errors=15, at=NOW + timedelta(hours=1, minutes=20))
    before = len(receiver.posts)
    again = tick(now=NOW + timedelta(hours=1, minutes=30))
    assert again.evaluation.fired >= 1 and len(receiver.posts) == before
    # still firing once the cooldown has passed (the last notified alert was seen at +35 min): sent
    # now, once, not left silent for as long as the problem lasts
    tick(now=NOW + timedelta(hours=1, minutes=40))
    tick(now=NOW + timedelta(hours=1, minutes=45))
    hooks = [p["json"] for p in receiver.posts[before:] if p["path"] == "/hook"]
    assert [h["event"] for h in hooks] == ["firing"] and hooks[0]["fire_count"] == 2
    [refired] = [a for a in alerts() if a["rule"] == "high-error-rate" and a["state"] == "firing"]
    assert refired["notified"]


def test_acknowledged_alerts_do_not_escalate_and_the_cli(
    home, tmp_path, monkeypatch, receiver, smtp_server, capsys
):
    write_config(tmp_path, monkeypatch, receiver, smtp_server)
    add_runs("bot-a", 30, errors=15, at=NOW - timedelta(minutes=10))
    tick(now=NOW)
    [alert] = [a for a in alerts() if a["rule"] == "high-error-rate"]
    assert main(["alerts", "list", "--state", "firing", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert alert["alert_id"] in {a["alert_id"] for a in listed}
    assert main(["alerts", "ack", alert["alert_id"], "--by", "dana", "--note", "looking"]) == 0
    after_ack = tick(now=NOW + timedelta(minutes=45))
    assert [p["json"]["event"] for p in receiver.posts if p["path"] == "/hook"] == ["firing"]  # no escalation
    assert (
        after_ack.evaluation.acknowledged == 1 and "(and 1 acknowledged, still holding)" in after_ack.line()
    )
    [acked] = [a for a in alerts() if a["rule"] == "high-error-rate"]
    assert (acked["state"], acked["acknowledged_by"], acked["escalation_level"]) == (
        "acknowledged",
        "dana",
        0,
    )
    capsys.readouterr()
    # resolved by hand: the alert was sent, so its resolution is sent too, at once
    assert main(["alerts", "resolve", alert["alert_id"], "--by", "dana"]) == 0
    assert "3 of 3 resolution notice(s) sent" in capsys.readouterr().out
    resolution = [p["json"] for p in receiver.posts if p["path"] == "/hook"][-1]
    assert resolution["event"] == "resolved" and resolution["message"].startswith("resolved by hand by dana")
    assert main(["alerts", "ack", "nope", "--by", "dana"]) == 2
    assert "no alert 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("alerts_section", "message"),
    [
        ({"rules": [{"name": "x", "metric": "error_rate", "condition": "above 3"}]}, r"alerts.rules\[0\].condition: 'above 3' is not a condition"),
        ({"rules": [{"name": "x", "metric": "latency", "condition": "> 1"}]}, r"alerts.rules\[0\].metric: 'latency' is not a metric"),
        ({"rules": [{"name": "x", "kind": "anomaly", "severity": "loud"}]}, r"alerts.rules\[0\].severity: 'loud' is not a severity"),
        ({"rules": [{"name": "x", "kind": "budget", "channels": ["pager"]}]}, r"channel 'pager' is not defined"),
        ({"rules": [{"name": "x", "kind": "anomaly", "window": "soon"}]}, r"alerts.rules\[0\].window: 'soon' is not a duration"),
        ({"channels": {"slack": {"url": "x"}}}, r"alerts.channels.slack.url: unknown key"),
    ],
)  # fmt: skip
def test_invalid_rules_fail_at_load_with_file_key_and_reason(alerts_section, message):
    with pytest.raises(UserError, match=message):
        parse_alerts(alerts_section, "agentmon.yaml")


def test_every_ingest_and_benchmark_run_ends_with_the_alerts_and_the_schedule_only_escalates(
    home, tmp_path, monkeypatch, receiver, smtp_server
):
    import dagster as dg

    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.defs.alerting.assets import alerts

    for job in ("ingest_job", "evals_job", "agentmon_job"):  # no run of its own after each of them
        assert "alerts/alerts" in {
            k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys
        }
    assert defs.resolve_schedule_def("alerts_escalation").job_name == "alerts_job"
    assert not [s for s in defs.sensors if s.name == "alerts_sensor"]

    write_config(tmp_path, monkeypatch, receiver, smtp_server)
    add_runs("bot-a", 30, errors=15, at=datetime.now(UTC) - timedelta(minutes=5))
    result = dg.materialize([alerts], instance=dg.DagsterInstance.ephemeral())
    assert result.success
    [check] = [
        e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert [p["json"]["rule"] for p in receiver.posts if p["path"] == "/hook"] == ["high-error-rate"]


def test_the_example_configuration_loads(monkeypatch):
    from agentmon_pipeline.alerting.service import alert_config
    from agentmon_pipeline.config import project_dir

    monkeypatch.setenv("AGENTMON_CONFIG", str(project_dir() / "examples" / "agentmon.yaml"))
    config = alert_config()
    assert {r.kind for r in config.rules} == {"metric", "anomaly", "regression", "budget"}
