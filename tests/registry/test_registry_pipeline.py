"""The registry as a user meets it: agents.yaml synced by the pipeline, its fields in the marts,
unregistered versions flagged, and register / activate / rollback from the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from agentmon_pipeline.app.cli import main
from agentmon_pipeline.config import project_dir, settings
from agentmon_pipeline.devtools.demo import generate_demo
from agentmon_pipeline.storage import fetch_rows
from tests.conftest import DEMO_END


def _rows(sql: str) -> list[dict]:
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    try:
        return fetch_rows(con, sql)
    finally:
        con.close()


@pytest.mark.slow
def test_agents_file_flows_into_the_marts_and_the_cli_rolls_back(home, tmp_path, monkeypatch, capsys):
    from agentmon_pipeline.defs.analytics.assets import version_comparisons
    from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
    from agentmon_pipeline.defs.registry.assets import agent_registry
    from agentmon_pipeline.defs.resources import dbt_resource
    from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

    # the example registry, with support-bot's deployment history (as the demo deploys it)
    example = yaml.safe_load((project_dir() / "examples" / "agents.yaml").read_text())
    for version, days_before_end in (("1.0", 42), ("1.1", 11), ("1.2", 10)):
        example["agents"]["support-bot"]["versions"][version]["deployed_at"] = DEMO_END - timedelta(
            days=days_before_end
        )
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(yaml.safe_dump(example))
    monkeypatch.setenv("AGENTMON_AGENTS_FILE", str(agents_file))
    generate_demo(settings().landing_dir, days=16, agents=6, seed=5, end=DEMO_END)  # 6 days before 1.2
    assets = [raw_telemetry, raw_model_prices, agent_registry, agentmon_dbt_models, version_comparisons]
    run = lambda: dg.materialize(
        assets, resources={"dbt": dbt_resource}, instance=dg.DagsterInstance.ephemeral()
    )
    assert run().success

    agents = {r["agent_id"]: r for r in _rows("select * from marts.dim_agents")}
    bot = agents["support-bot"]
    assert (bot["owner"], json.loads(bot["capabilities"]), bot["active_version"], bot["is_registered"]) == (
        "support-platform@example.com",
        ["order-status", "refunds", "faq"],
        "1.2",
        True,
    )
    assert bot["agent_name"] == "Support Bot" and bot["total_runs"] > 0
    assert agents["triage-router"]["is_registered"] is False and agents["triage-router"]["owner"] is None
    versions = {
        (r["agent_id"], r["agent_version"]): r for r in _rows("select * from marts.dim_agent_versions")
    }
    assert versions[("data-analyst", "1.1")]["registry_status"] == "unregistered"
    assert versions[("data-analyst", "1.1")]["total_runs"] > 0
    assert versions[("support-bot", "1.2")]["registry_status"] == "active"
    assert json.loads(versions[("support-bot", "1.2")]["config"])["model"] == "gpt-4o"
    assert versions[("support-bot", "1.1")]["registry_status"] == "inactive"
    # switches come from fct_deployments: the comparison of 1.2 starts at its deployment event
    deployed = _rows("select deployed_at from marts.fct_deployments where agent_id = 'support-bot' "
                     "and agent_version = '1.2' and source = 'telemetry'")[0]["deployed_at"]  # fmt: skip
    [latency] = _rows("select * from analytics.version_comparisons where agent_id = 'support-bot' "
                      "and candidate_version = '1.2' and metric = 'p95_duration_ms'")  # fmt: skip
    assert latency["switched_at"] == deployed and latency["verdict"] == "regressed"

    # the CLI: the listing names what telemetry shows but nobody registered
    assert main(["registry", "list"]) == 0
    out = capsys.readouterr().out
    assert "support-bot" in out and "data-analyst 1.1" in out.split("not registered")[1]
    # roll back the regressed version, register a fix, activate it
    assert main(["registry", "rollback", "support-bot", "--by", "oncall", "--note", "p95 +80%"]) == 0
    assert capsys.readouterr().out.strip() == "rollback support-bot 1.1 (was 1.2)"
    assert main(["registry", "register", "support-bot", "1.3", "--config", '{"model": "gpt-4o-mini"}',
                 "--activate", "--by", "dev"]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        "register_version support-bot 1.3",
        "activate support-bot 1.3 (was 1.1)",
    ]
    assert main(["registry", "show", "support-bot", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {v["agent_version"]: v["status"] for v in shown["versions"]} == {
        "1.0": "inactive",
        "1.1": "inactive",
        "1.2": "rolled_back",
        "1.3": "active",
    }
    assert shown["versions"][0]["deployed_at"].startswith(str((DEMO_END - timedelta(days=42)).date()))
    assert [(h["action"], h["actor"]) for h in shown["history"][-3:]] == [
        ("rollback", "oncall"),
        ("register_version", "dev"),
        ("activate", "dev"),
    ]
    # a second pipeline run re-syncs the file: its active version (1.2) wins again, audited;
    # the marts show the registry's history as deployments
    assert run().success
    log = _rows(
        "select action, agent_version, actor from registry.audit_log where agent_id = 'support-bot' order by seq"
    )
    assert log[-1] == {"action": "activate", "agent_version": "1.2", "actor": "agents.yaml"}
    actions = [r["action"] for r in _rows("select action from marts.fct_deployments where agent_id = 'support-bot' "
                                          "and source = 'registry' order by deployed_at")]  # fmt: skip
    assert actions.count("rollback") == 1 and actions.count("activation") >= 3


def test_registry_mistakes_are_one_line_errors(home, tmp_path, capsys):
    bad = tmp_path / "agents.yaml"
    bad.write_text("agents:\n  bot:\n    versions:\n      1.10: {}\n")
    assert main(["registry", "sync", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "quote it" in err and str(bad) in err
    assert main(["registry", "rollback", "nobody"]) == 2
    assert "agent 'nobody' is not registered" in capsys.readouterr().err
    assert main(["registry", "register", "bot", "1.0", "--config", "{oops"]) == 2
    assert "--config: not valid JSON" in capsys.readouterr().err
    assert (
        main(["registry", "register", "bot", "1.0", "--config", "@" + str(Path(tmp_path) / "missing.json")])
        == 2
    )
    assert "cannot read the file" in capsys.readouterr().err
    assert main(["registry", "sync"]) == 2
    assert "no agents file" in capsys.readouterr().err
