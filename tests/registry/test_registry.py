"""The registry's rules, on an in-memory warehouse: one active version, rollback as an undo
stack, immutable configs, every change audited, agents.yaml sync idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.registry import AgentRegistry, parse_agents_file, sync_agents_file

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def registry(con):
    return AgentRegistry(con, actor="ana", now=T0)


def _statuses(registry, agent_id):
    return {v["agent_version"]: v["status"] for v in registry.versions(agent_id)}


def test_register_activate_and_one_active_version(registry):
    registry.register_agent("bot", name="Bot", owner="team-a", capabilities=["faq", "refunds"])
    for version in ("1.0", "1.1", "1.2"):
        registry.register_version("bot", version, config={"model": "gpt-4o-mini", "v": version})
    assert _statuses(registry, "bot") == {"1.0": "registered", "1.1": "registered", "1.2": "registered"}
    registry.activate("bot", "1.0")
    registry.activate("bot", "1.1")
    assert _statuses(registry, "bot") == {"1.0": "inactive", "1.1": "active", "1.2": "registered"}
    assert registry.activate("bot", "1.1") == []  # already active: nothing recorded
    agent = registry.agents()[0]
    assert (
        agent["name"],
        agent["owner"],
        agent["capabilities"],
        agent["active_version"],
        agent["versions"],
    ) == ("Bot", "team-a", ["faq", "refunds"], "1.1", 3)


def test_rollback_walks_back_the_activations(registry):
    for version in ("1.0", "1.1", "1.2"):
        registry.register_version("bot", version, activate=True)
    [change] = registry.rollback("bot", note="p95 doubled")
    assert (change.agent_version, change.previous_version) == ("1.1", "1.2")
    assert _statuses(registry, "bot") == {"1.0": "inactive", "1.1": "active", "1.2": "rolled_back"}
    registry.rollback("bot")
    assert registry.active_version("bot") == "1.0"
    with pytest.raises(UserError, match="nothing to roll back to"):
        registry.rollback("bot")
    # activating again after rollbacks starts a new history
    registry.activate("bot", "1.2")
    registry.rollback("bot")
    assert registry.active_version("bot") == "1.0"


def test_every_change_is_audited_with_actor_and_effective_time(registry):
    registry.register_version("bot", "1.0", activate=True, at=datetime(2026, 10, 1, tzinfo=UTC))
    registry.register_version("bot", "1.1", activate=True)
    registry.rollback("bot", note="errors")
    log = registry.history("bot")
    assert [r["action"] for r in log] == [
        "register_agent",
        "register_version",
        "activate",
        "register_version",
        "activate",
        "rollback",
    ]
    assert {r["actor"] for r in log} == {"ana"}
    assert log[2]["effective_at"] == datetime(2026, 10, 1, tzinfo=UTC)  # backdated activation
    assert log[2]["logged_at"] == T0
    assert (log[5]["agent_version"], log[5]["previous_version"], log[5]["detail"]) == (
        "1.0",
        "1.1",
        {"note": "errors"},
    )


def test_versions_are_immutable_and_errors_are_one_line(registry):
    registry.register_version("bot", "1.0", config={"temperature": 0.2})
    assert registry.register_version("bot", "1.0", config={"temperature": 0.2}) == []
    with pytest.raises(UserError, match="register a new version"):
        registry.register_version("bot", "1.0", config={"temperature": 0.7})
    with pytest.raises(UserError, match=r"bot 9.9 is not registered \(registered versions: 1.0\)"):
        registry.activate("bot", "9.9")
    with pytest.raises(UserError, match="config: expected a mapping"):
        registry.register_version("bot", "2.0", config=["not", "a", "mapping"])
    with pytest.raises(UserError, match="agent 'ghost' is not registered"):
        registry.rollback("ghost")
    assert [v["agent_version"] for v in registry.versions("bot")] == ["1.0"]  # nothing half-written


AGENTS_YAML = """
agents:
  support-bot:
    name: Support Bot
    owner: support@example.com
    capabilities: [refunds, order-status]
    active: "1.2"
    versions:
      "1.0": {config: {model: gpt-4o-mini}, deployed_at: 2026-10-01T00:00:00Z}
      "1.1": {config: {model: gpt-4o-mini, temperature: 0.2}, deployed_at: 2026-10-20T00:00:00Z}
      "1.2": {config: {model: gpt-4o}, deployed_at: 2026-11-10T09:00:00Z}
  math-agent:
    versions:
      "2.0": {}
"""


def test_agents_file_sync_replays_history_and_is_idempotent(registry, tmp_path):
    path = tmp_path / "agents.yaml"
    path.write_text(AGENTS_YAML)
    changes = sync_agents_file(registry, path)
    assert [c.line() for c in changes if c.action == "activate"] == [
        "activate support-bot 1.0",
        "activate support-bot 1.1 (was 1.0)",
        "activate support-bot 1.2 (was 1.1)",
    ]
    assert registry.active_version("support-bot") == "1.2"
    assert registry.active_version("math-agent") is None
    assert registry.version("support-bot", "1.2")["deployed_at"] == datetime(2026, 11, 10, 9, tzinfo=UTC)
    assert sync_agents_file(registry, path) == []  # a second sync changes nothing
    registry.rollback("support-bot")  # the replayed history is what rollback walks
    assert registry.active_version("support-bot") == "1.1"
    # an edited owner is an update; the file's active version is activated again
    path.write_text(AGENTS_YAML.replace("support@example.com", "help@example.com"))
    actions = [c.action for c in sync_agents_file(registry, path)]
    assert actions == ["update_agent", "activate"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "agents:\n  bot:\n    versions:\n      1.10: {}\n",
            r'agents.bot.versions: 1.1 is read by YAML as a number; quote it \("1.1"\)',
        ),
        ("agents:\n  bot:\n    owner: a\n    colour: red\n", r"agents.bot.colour: unknown key"),
        (
            "agents:\n  bot:\n    active: '3.0'\n    versions: {'1.0': {}}\n",
            r"agents.bot.active: '3.0' is not one of the versions",
        ),
        (
            "agents:\n  bot:\n    versions:\n      '1.0': {deployed_at: yesterday}\n",
            r"agents.bot.versions.1.0.deployed_at: 'yesterday' is not an ISO 8601 time",
        ),
        ("agents: [bot]\n", r"agents: expected a mapping"),
        ("agents:\n  bot: {capabilities: faq}\n", r"agents.bot.capabilities: expected a list"),
        ("agents:\n  bot:\n   - : :\n", r"line \d+: not valid YAML"),
    ],
)
def test_agents_file_mistakes_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        parse_agents_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_sync_refuses_a_changed_config_with_the_key(registry, tmp_path):
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  bot:\n    versions:\n      '1.0': {config: {t: 1}}\n")
    sync_agents_file(registry, path)
    path.write_text("agents:\n  bot:\n    versions:\n      '1.0': {config: {t: 2}}\n")
    with pytest.raises(UserError, match=r"agents.bot.versions.1.0.config: .*register a new version"):
        sync_agents_file(registry, path)


def test_the_example_agents_file_is_valid():
    from agentmon_pipeline.config import project_dir

    specs = {s.agent_id: s for s in parse_agents_file(project_dir() / "examples" / "agents.yaml")}
    assert specs["support-bot"].active == "1.2" and "1.1" not in {
        v.version for v in specs["data-analyst"].versions
    }
