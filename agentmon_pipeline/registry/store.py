"""The agent registry: agents, their versions, which version is active, and an audit of every
change (`registry.agents`, `registry.agent_versions`, `registry.audit_log`).

Rules a team can rely on:
- one active version per agent; activating a version makes the active one `inactive`;
- a version's config never changes once registered (register a new version instead); its
  description may be edited;
- `rollback` goes back one activation, like an undo stack: after activating 1.0, 1.1, 1.2, a
  rollback makes 1.1 active (1.2 becomes `rolled_back`), a second one 1.0, a third one fails;
- every change is a row of the audit log, with who made it and when it took effect. An activation
  may be backdated (`at`) to record a deployment that happened before the registry knew of it; the
  production version comparison uses these times as the moment one version replaced another.

Writes happen in one transaction per change, on a connection the caller opened with the warehouse
lock (DuckDB allows one writer).
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage import fetch_rows, transaction

STATUSES = ("registered", "active", "inactive", "rolled_back")
AGENT_FIELDS = ("name", "description", "owner", "capabilities")


def default_actor() -> str:
    return os.environ.get("AGENTMON_ACTOR") or _login() or "unknown"


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class Change:
    """One thing the registry did, as the audit log records it."""

    action: str
    agent_id: str
    agent_version: str | None = None
    previous_version: str | None = None

    def line(self) -> str:
        what = f"{self.agent_id} {self.agent_version}" if self.agent_version else self.agent_id
        if self.action in ("activate", "rollback") and self.previous_version:
            return f"{self.action} {what} (was {self.previous_version})"
        return f"{self.action} {what}"


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{what}: expected a non-empty string, got {value!r}")
    if value != value.strip():
        raise UserError(f"{what}: {value!r} has leading or trailing spaces")
    return value


def check_capabilities(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise UserError(f"{what}: expected a list of names, e.g. [refunds, search], got {value!r}")
    return list(value)


def check_config(value: Any, what: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{what}: expected a mapping (JSON object), got {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{what}: not representable as JSON ({exc})") from None
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class AgentRegistry:
    """Agents and versions in the warehouse. `now` and `actor` are injectable for tests."""

    def __init__(self, con: duckdb.DuckDBPyConnection, actor: str | None = None, now: datetime | None = None):
        self.con = con
        self.actor = actor or default_actor()
        self._now = now

    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    # reads -------------------------------------------------------------------------------------

    def agent(self, agent_id: str) -> dict | None:
        rows = fetch_rows(self.con, "select * from registry.agents where agent_id = ?", [agent_id])
        if not rows:
            return None
        row = rows[0]
        row["capabilities"] = _loads(row["capabilities"])
        return row

    def versions(self, agent_id: str) -> list[dict]:
        rows = fetch_rows(
            self.con,
            "select * from registry.agent_versions where agent_id = ? order by registered_at, agent_version",
            [agent_id],
        )
        for row in rows:
            row["config"] = _loads(row["config"])
        return rows

    def version(self, agent_id: str, version: str) -> dict | None:
        return next((v for v in self.versions(agent_id) if v["agent_version"] == version), None)

    def active_version(self, agent_id: str) -> str | None:
        row = self.con.execute(
            "select agent_version from registry.agent_versions where agent_id = ? and status = 'active'",
            [agent_id],
        ).fetchone()
        return row[0] if row else None

    def agents(self) -> list[dict]:
        """Every agent with its active version and version count."""
        rows = fetch_rows(
            self.con,
            """
            select a.*, v.active_version, coalesce(v.versions, 0) as versions
            from registry.agents a
            left join (
                select agent_id, count(*) as versions,
                       max(agent_version) filter (where status = 'active') as active_version
                from registry.agent_versions group by agent_id
            ) v using (agent_id)
            order by a.agent_id
            """,
        )
        for row in rows:
            row["capabilities"] = _loads(row["capabilities"])
        return rows

    def history(self, agent_id: str) -> list[dict]:
        rows = fetch_rows(
            self.con, "select * from registry.audit_log where agent_id = ? order by seq", [agent_id]
        )
        for row in rows:
            row["detail"] = _loads(row["detail"])
        return rows

    def activation_stack(self, agent_id: str) -> list[str]:
        """The versions a rollback walks back through, most recent last."""
        stack: list[str] = []
        for row in self.con.execute(
            "select action, agent_version from registry.audit_log "
            "where agent_id = ? and action in ('activate', 'rollback') order by seq",
            [agent_id],
        ).fetchall():
            if row[0] == "activate":
                stack.append(row[1])
            elif stack:
                stack.pop()
        return stack

    # writes ------------------------------------------------------------------------------------

    def _audit(self, change: Change, effective_at: datetime | None = None, detail: Any = None) -> None:
        now = self.now()
        self.con.execute(
            "insert into registry.audit_log values (nextval('registry.audit_seq'), ?, ?, ?, ?, ?, ?, ?, ?)",
            [now, effective_at or now, self.actor, change.action, change.agent_id, change.agent_version,
             change.previous_version, _json(detail)],
        )  # fmt: skip

    def register_agent(
        self, agent_id: str, name: str | None = None, description: str | None = None,
        owner: str | None = None, capabilities: list[str] | None = None,
    ) -> list[Change]:  # fmt: skip
        """Create the agent, or update the fields given (None leaves a field as it is)."""
        _check_id(agent_id, "agent id")
        capabilities = check_capabilities(capabilities, f"{agent_id}: capabilities")
        given = {"name": name, "description": description, "owner": owner, "capabilities": capabilities}
        given = {k: v for k, v in given.items() if v is not None}
        existing = self.agent(agent_id)
        now = self.now()
        with self._transaction():
            if existing is None:
                self.con.execute(
                    "insert into registry.agents values (?, ?, ?, ?, ?, ?, ?)",
                    [agent_id, given.get("name"), given.get("description"), given.get("owner"),
                     _json(given.get("capabilities")), now, now],
                )  # fmt: skip
                change = Change("register_agent", agent_id)
                self._audit(change, detail=given or None)
                return [change]
            changed = {k: v for k, v in given.items() if existing[k] != v}
            if not changed:
                return []
            sets = ", ".join(f"{k} = ?" for k in changed)
            values = [_json(v) if k == "capabilities" else v for k, v in changed.items()]
            self.con.execute(f"update registry.agents set {sets}, updated_at = ? where agent_id = ?",
                             [*values, now, agent_id])  # fmt: skip
            change = Change("update_agent", agent_id)
            self._audit(change, detail={k: {"from": existing[k], "to": v} for k, v in changed.items()})
            return [change]

    def register_version(
        self, agent_id: str, version: str, config: dict | None = None, description: str | None = None,
        activate: bool = False, at: datetime | None = None,
    ) -> list[Change]:  # fmt: skip
        """Register a version (the agent is created if new). Registering it again with the same
        config is a no-op; with another config it is refused: versions are immutable."""
        _check_id(agent_id, "agent id")
        _check_id(version, f"{agent_id}: version")
        config = check_config(config, f"{agent_id} {version}: config")
        changes: list[Change] = []
        if self.agent(agent_id) is None:
            changes += self.register_agent(agent_id)
        existing = self.version(agent_id, version)
        if existing is None:
            with self._transaction():
                self.con.execute(
                    "insert into registry.agent_versions values (?, ?, ?, ?, 'registered', ?, null)",
                    [agent_id, version, description, _json(config), self.now()],
                )
                change = Change("register_version", agent_id, version)
                self._audit(change, detail={"config": config, "description": description})
                changes.append(change)
        else:
            if config is not None and existing["config"] != config:
                raise UserError(
                    f"{agent_id} {version} is registered with another config; a version's config never "
                    "changes: register a new version"
                )
            if description is not None and existing["description"] != description:
                with self._transaction():
                    self.con.execute(
                        "update registry.agent_versions set description = ? where agent_id = ? and agent_version = ?",
                        [description, agent_id, version],
                    )
                    change = Change("update_version", agent_id, version)
                    self._audit(
                        change, detail={"description": {"from": existing["description"], "to": description}}
                    )
                    changes.append(change)
        if activate and self.active_version(agent_id) != version:
            changes += self.activate(agent_id, version, at=at)
        return changes

    def activate(
        self, agent_id: str, version: str, at: datetime | None = None, note: str | None = None
    ) -> list[Change]:
        """Make `version` the active one. Activating the active version changes nothing."""
        if self.version(agent_id, version) is None:
            known = ", ".join(v["agent_version"] for v in self.versions(agent_id)) or "none"
            raise UserError(f"{agent_id} {version} is not registered (registered versions: {known})")
        previous = self.active_version(agent_id)
        if previous == version:
            return []
        change = Change("activate", agent_id, version, previous)
        self._switch(change, "inactive", at, note)
        return [change]

    def rollback(self, agent_id: str, at: datetime | None = None, note: str | None = None) -> list[Change]:
        """Make the version that was active before the current one active again."""
        if self.agent(agent_id) is None:
            raise UserError(f"agent {agent_id!r} is not registered")
        stack = self.activation_stack(agent_id)
        if len(stack) < 2:
            current = stack[-1] if stack else None
            raise UserError(
                f"{agent_id}: nothing to roll back to"
                + (
                    f" ({current} is the first version activated)"
                    if current
                    else " (no version was ever activated)"
                )
            )
        change = Change("rollback", agent_id, stack[-2], stack[-1])
        self._switch(change, "rolled_back", at, note)
        return [change]

    def _switch(self, change: Change, old_status: str, at: datetime | None, note: str | None) -> None:
        effective = at or self.now()
        with self._transaction():
            if change.previous_version is not None:
                self.con.execute(
                    "update registry.agent_versions set status = ? where agent_id = ? and agent_version = ?",
                    [old_status, change.agent_id, change.previous_version],
                )
            self.con.execute(
                "update registry.agent_versions set status = 'active', deployed_at = ? "
                "where agent_id = ? and agent_version = ?",
                [effective, change.agent_id, change.agent_version],
            )
            self._audit(change, effective_at=effective, detail={"note": note} if note else None)

    def _transaction(self):
        return transaction(self.con)  # nested use joins the outer one
