"""Redaction: every kind of secret and personal data, planted in each input format, is gone from
every table and from the bytes of the warehouse file after the pipeline ran."""

from __future__ import annotations

import gzip
import json

import duckdb
import pytest

from agentmon_pipeline.config import settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.ingest.redaction import parse_redaction
from tests.ingest.test_otlp import otlp_span, request
from tests.test_pipeline import materialize_all

SECRETS = {
    "email": "dana.scully@fbi.example.org",
    "phone": "+1 415-555-0100",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "openai_key": "sk-proj-Zq8xR2mN7vL4kP1tY6wB3cJ9",
    "anthropic_key": "sk-ant-api03-Hq2Lm9Xv4Rt7Yp1Nc8Bw3Kz6",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
    "slack_token": "xoxb-123456789012-abcdefghijklmnop",
    "bearer_token": "Bearer e1f2a3b4c5d6e7f8a9b0c1d2",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "employee_id": "EMP-482913",  # an extra pattern from agentmon.yaml
}
TEXT = " | ".join(f"{kind}: {value}" for kind, value in SECRETS.items())
USER = "user-7741"
T0 = "2026-11-19T10:00:00Z"


def plant(landing) -> None:
    native = [
        {"trace_id": "n1", "span_id": "a", "name": f"run for {SECRETS['email']}", "kind": "agent", "start_time": T0,
         "duration_ms": 100, "agent_id": "bot", "user_id": USER, "input": TEXT, "output": {"answer": TEXT},
         "status": "error", "error_message": TEXT, "attributes": {"note": TEXT, "nested": {"who": SECRETS["email"]}},
         "resource": {"host.owner": SECRETS["email"]}},
        {"type": "metric", "name": "queue", "value": 1, "time": T0, "labels": {"owner": SECRETS["email"]}},
        {"type": "event", "name": "feedback", "time": T0, "trace_id": "n1", "attributes": {"comment": TEXT}},
    ]  # fmt: skip
    bad = json.dumps({"trace_id": "n2", "span_id": "b", "name": TEXT})  # no times: quarantined with its line
    (landing / "native.jsonl").write_text(
        "\n".join([*map(json.dumps, native), bad, f"not json {TEXT}"]) + "\n"
    )
    spans = [otlp_span("chat", "ab" * 16, "01" * 8, {"gen_ai.operation.name": "chat", "input.value": TEXT,
                                                     "user.id": USER, "app.note": TEXT}),
             {**otlp_span("broken", "ab" * 16, "02" * 8, {"app.note": TEXT}), "name": ""}]  # fmt: skip
    (landing / "otlp.jsonl.gz").write_bytes(gzip.compress((json.dumps(request(spans)) + "\n").encode()))
    langfuse = {"trace": {"id": "lf1", "name": "lf-agent", "userId": USER},
                "observations": [{"id": "o1", "traceId": "lf1", "type": "GENERATION", "name": "llm",
                                  "startTime": T0, "endTime": "2026-11-19T10:00:01Z", "model": "gpt-4o",
                                  "input": {"messages": [{"role": "user", "content": TEXT}]}, "output": TEXT,
                                  "metadata": {"attributes": {"app.note": TEXT}}}]}  # fmt: skip
    (landing / "langfuse.json").write_text(json.dumps(langfuse, indent=2))
    (landing / "notes.txt").write_text(f"plain text, not telemetry: {TEXT}\n")  # quarantined whole


def found_in_warehouse(planted: dict[str, str]) -> list[tuple[str, str]]:
    """(where, kind) for every planted value found in a table of the warehouse, or in the bytes of
    its file (where a deleted or overwritten value could linger)."""
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
    ).fetchall()
    found = []
    for schema, table in tables:
        text = con.execute(
            f"select coalesce(string_agg(t::varchar, chr(10)), '') from {schema}.\"{table}\" t"
        ).fetchone()[0]
        found += [(f"{schema}.{table}", kind) for kind, value in planted.items() if value in text]
    con.close()
    data = settings().warehouse_path.read_bytes()
    return found + [("file bytes", kind) for kind, value in planted.items() if value.encode() in data]


def test_no_secret_reaches_the_warehouse(home, tmp_path, monkeypatch):
    config = tmp_path / "agentmon.yaml"
    config.write_text("redaction:\n  patterns:\n    - {name: employee_id, regex: 'EMP-[0-9]{6}'}\n"
                      "  hash_user_ids: true\n")  # fmt: skip
    monkeypatch.setenv("AGENTMON_CONFIG", str(config))
    monkeypatch.setenv("AGENTMON_HASH_KEY", "test-key")
    plant(settings().landing_dir)
    assert materialize_all().success

    assert found_in_warehouse({**SECRETS, "user": USER}) == []
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    assert con.execute("select sum(loaded), sum(quarantined) from raw.ingested_files").fetchone() == (5, 4)
    redacted = con.execute("select input from raw.spans where span_id = 'a'").fetchone()[0]
    users = {
        u
        for (u,) in con.execute("select distinct user_id from raw.spans where user_id is not null").fetchall()
    }
    con.close()
    for kind in SECRETS:
        assert f"[REDACTED:{kind}]" in redacted
    assert users and all(u.startswith("uid_") for u in users)  # the same user, one stable hash
    assert len(users) == 1


def test_redaction_config_mistakes_name_the_key():
    with pytest.raises(UserError, match=r"redaction.patterns\[0\].regex: not a regular expression"):
        parse_redaction({"patterns": [{"name": "x", "regex": "("}]})
    with pytest.raises(UserError, match=r"redaction.mask: unknown key"):
        parse_redaction({"mask": True})
