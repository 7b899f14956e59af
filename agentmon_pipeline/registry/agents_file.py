"""`agents.yaml`: the registry as code. Syncing it registers what is new, updates the agent fields
that changed, and activates the version named `active` (with, on the first sync, the earlier versions' `deployed_at` replayed as its history);
running it again changes nothing. Nothing
is ever deleted by a sync (a version missing from the file stays registered).

```yaml
agents:
  support-bot:
    name: Support Bot
    description: Answers customer questions
    owner: support-team@example.com
    capabilities: [refunds, order-status]
    active: "1.2"
    versions:
      "1.1": {config: {model: gpt-4o-mini, temperature: 0.2}}
      "1.2": {config: {model: gpt-4o-mini, temperature: 0.0}, deployed_at: 2026-11-17T09:00:00Z}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from agentmon_pipeline.config import read_yaml
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.registry.store import AgentRegistry, Change, check_capabilities, check_config

AGENT_KEYS = {"name", "description", "owner", "capabilities", "active", "versions"}
VERSION_KEYS = {"description", "config", "deployed_at"}


@dataclass(frozen=True)
class VersionSpec:
    version: str
    description: str | None
    config: dict | None
    deployed_at: datetime | None


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    name: str | None
    description: str | None
    owner: str | None
    capabilities: list[str] | None
    active: str | None
    versions: list[VersionSpec]


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserError(f"{where}: expected text, got {value!r}")
    return value


def _version_key(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UserError(f"{where}: expected a version string, got {value!r}")
    if not isinstance(value, str):
        # YAML reads 1.10 as the number 1.1: refuse rather than guess which was meant
        raise UserError(f'{where}: {value!r} is read by YAML as a number; quote it ("{value}")')
    if not value.strip():
        raise UserError(f"{where}: empty version")
    return value


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise UserError(f"{where}: {value!r} is not an ISO 8601 time (e.g. 2026-11-17T09:00:00Z)")


def _fields(value: Any, where: str, keys: set[str], expected: str) -> dict:
    """A mapping with only the known keys (a missing one is an empty mapping)."""
    value = value or {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a mapping ({expected})")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise UserError(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(keys))}")
    return value


def parse_agents_file(path: Path) -> list[AgentSpec]:
    """The file's agents, checked: every mistake names the file and the key."""
    if not path.exists():
        raise UserError(f"{path}: no such agents file")
    data = read_yaml(path)
    if not isinstance(data, dict) or set(data) - {"agents"}:
        raise UserError(f"{path}: expected one top-level key, agents: a mapping of agent id to its fields")
    agents = data.get("agents") or {}
    if not isinstance(agents, dict):
        raise UserError(f"{path}: agents: expected a mapping of agent id to its fields")
    specs = []
    for agent_id, fields in agents.items():
        where = f"{path}: agents.{agent_id}"
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise UserError(f"{where}: an agent id must be text")
        fields = _fields(fields, where, AGENT_KEYS, "name, owner, versions, ...")
        capabilities = check_capabilities(fields.get("capabilities"), f"{where}.capabilities")
        versions_raw = fields.get("versions") or {}
        if not isinstance(versions_raw, dict):
            raise UserError(f"{where}.versions: expected a mapping of version to its fields")
        versions = []
        for key, vfields in versions_raw.items():
            version = _version_key(key, f"{where}.versions")
            vwhere = f"{where}.versions.{version}"
            vfields = _fields(vfields, vwhere, VERSION_KEYS, "config, description, deployed_at")
            versions.append(VersionSpec(version, _text(vfields.get("description"), f"{vwhere}.description"),
                                        check_config(vfields.get("config"), f"{vwhere}.config"),
                                        _time(vfields.get("deployed_at"), f"{vwhere}.deployed_at")))  # fmt: skip
        active = fields.get("active")
        if active is not None:
            active = _version_key(active, f"{where}.active")
            if active not in {v.version for v in versions}:
                raise UserError(
                    f"{where}.active: {active!r} is not one of the versions listed under versions"
                )
        specs.append(AgentSpec(
            agent_id, _text(fields.get("name"), f"{where}.name"), _text(fields.get("description"), f"{where}.description"),
            _text(fields.get("owner"), f"{where}.owner"), capabilities, active, versions,
        ))  # fmt: skip
    return specs


def sync_agents_file(registry: AgentRegistry, path: Path) -> list[Change]:
    """Bring the registry in line with the file. An immutable-config conflict stops the sync with
    the file and key; what was synced before it stays (each change is its own transaction)."""
    changes: list[Change] = []
    for spec in parse_agents_file(path):
        changes += registry.register_agent(
            spec.agent_id, spec.name, spec.description, spec.owner, spec.capabilities
        )
        for v in spec.versions:
            try:
                changes += registry.register_version(spec.agent_id, v.version, v.config, v.description)
            except UserError as exc:
                raise UserError(
                    f"{path}: agents.{spec.agent_id}.versions.{v.version}.config: {exc}"
                ) from None
        if spec.active is not None:
            changes += _activate(registry, spec)
    return changes


def _activate(registry: AgentRegistry, spec: AgentSpec) -> list[Change]:
    """Activate `active`. On an agent never activated before, the versions with an earlier
    `deployed_at` are activated first, in time order, so the registry holds the deployment history
    the file describes (and rollback can walk it)."""
    active = next(v for v in spec.versions if v.version == spec.active)
    changes: list[Change] = []
    if not registry.activation_stack(spec.agent_id) and active.deployed_at is not None:
        earlier = sorted(
            (v for v in spec.versions if v.deployed_at is not None and v.deployed_at < active.deployed_at),
            key=lambda v: v.deployed_at,
        )
        for v in earlier:
            changes += registry.activate(spec.agent_id, v.version, at=v.deployed_at)
    return changes + registry.activate(spec.agent_id, active.version, at=active.deployed_at)
