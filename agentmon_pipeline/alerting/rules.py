"""Alert rules, escalation steps and channels from the `alerts:` section of agentmon.yaml.

Every mistake fails at load with the file, the key and the reason. Channel settings may name
environment variables as `${NAME}`; they are resolved only when a notification is sent, so
secrets are never parsed into objects that are logged or stored.
"""

from __future__ import annotations

import fnmatch
import operator
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentmon_pipeline.analytics.timeseries import RUN_METRICS, canonical
from agentmon_pipeline.errors import UserError

SEVERITIES = ("info", "warning", "error", "critical")
KINDS = ("metric", "anomaly", "regression", "budget")
CHANNEL_TYPES = ("slack", "email", "webhook")
OPERATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
RULE_KEYS = {
    "name",
    "kind",
    "metric",
    "agent",
    "window",
    "condition",
    "min_runs",
    "severity",
    "cooldown",
    "channels",
    "description",
}
CHANNEL_KEYS = {
    "slack": {"webhook_url"},
    "email": {
        "smtp_host",
        "smtp_port",
        "starttls",
        "ca_file",
        "from",
        "to",
        "username",
        "password",
        "timeout_s",
    },
    "webhook": {"url", "secret", "timeout_s"},
}


@dataclass(frozen=True)
class Condition:
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str = "metric"
    metric: str | None = None
    agent: str = "*"
    window: timedelta = timedelta(hours=1)
    condition: Condition | None = None
    min_runs: int = 1
    severity: str = "warning"
    cooldown: timedelta = timedelta(hours=1)
    channels: tuple[str, ...] = ()
    description: str = ""

    def matches(self, agent_id: str | None) -> bool:
        return fnmatch.fnmatchcase(agent_id or "", self.agent)


@dataclass(frozen=True)
class EscalationStep:
    after: timedelta
    severity: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class AlertConfig:
    rules: tuple[Rule, ...] = ()
    escalation: tuple[EscalationStep, ...] = ()
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: Any, where: str) -> timedelta:
    match = _DURATION.match(str(value))
    if not match:
        raise UserError(f"{where}: {value!r} is not a duration such as 30m, 1h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_condition(value: Any, where: str) -> Condition:
    match = re.match(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$", str(value))
    if not match:
        raise UserError(f"{where}: {value!r} is not a condition such as '> 0.1' or '<= 500'")
    return Condition(match.group(1), float(match.group(2)))


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise UserError(f"{where}: {value!r} is not a severity; expected one of {', '.join(SEVERITIES)}")
    return value


def _channel_list(value: Any, where: str, known: dict) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise UserError(f"{where}: expected a list of channel names such as [slack, email]")
    for name in value:
        if name not in known:
            raise UserError(f"{where}: channel {name!r} is not defined under alerts.channels")
    return tuple(value)


def parse_alerts(section: Any, path: Path | str = "agentmon.yaml") -> AlertConfig:
    if section is None:
        return AlertConfig()
    if not isinstance(section, dict):
        raise UserError(f"{path}: alerts: expected a mapping with rules, escalation and channels")
    bad = sorted(set(section) - {"rules", "escalation", "channels"})
    if bad:
        raise UserError(f"{path}: alerts.{bad[0]}: unknown key; expected rules, escalation or channels")
    channels = _parse_channels(section.get("channels") or {}, path)
    rules, names = [], set()
    raw_rules = section.get("rules") or []
    if not isinstance(raw_rules, list):
        raise UserError(f"{path}: alerts.rules: expected a list of rules")
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"{path}: alerts.rules[{i}]", channels)
        if rule.name in names:
            raise UserError(f"{path}: alerts.rules[{i}].name: {rule.name!r} is used twice")
        names.add(rule.name)
        rules.append(rule)
    steps = []
    raw_steps = section.get("escalation") or []
    if not isinstance(raw_steps, list):
        raise UserError(f"{path}: alerts.escalation: expected a list of steps")
    for i, raw in enumerate(raw_steps):
        where = f"{path}: alerts.escalation[{i}]"
        if not isinstance(raw, dict) or "after" not in raw:
            raise UserError(f"{where}: expected {{after: 30m, severity: critical, channels: [...]}}")
        bad = sorted(set(raw) - {"after", "severity", "channels"})
        if bad:
            raise UserError(f"{where}.{bad[0]}: unknown key; expected after, severity, channels")
        steps.append(EscalationStep(parse_duration(raw["after"], f"{where}.after"),
                                    _severity(raw.get("severity", "critical"), f"{where}.severity"),
                                    _channel_list(raw.get("channels"), f"{where}.channels", channels)))  # fmt: skip
    return AlertConfig(tuple(rules), tuple(sorted(steps, key=lambda s: s.after)), channels)


def _parse_channels(raw: Any, path) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: alerts.channels: expected a mapping of channel name to settings")
    out = {}
    for name, settings in raw.items():
        where = f"{path}: alerts.channels.{name}"
        if not isinstance(settings, dict):
            raise UserError(f"{where}: expected a mapping of settings")
        kind = settings.get("type", name)
        if kind not in CHANNEL_TYPES:
            raise UserError(
                f"{where}: unknown channel type {kind!r}; expected {', '.join(CHANNEL_TYPES)} (or type:)"
            )
        bad = sorted(set(settings) - CHANNEL_KEYS[kind] - {"type"})
        if bad:
            raise UserError(
                f"{where}.{bad[0]}: unknown key; expected {', '.join(sorted(CHANNEL_KEYS[kind]))}"
            )
        required = {"slack": ["webhook_url"], "email": ["smtp_host", "from", "to"], "webhook": ["url"]}[kind]
        for key in required:
            if not settings.get(key):
                raise UserError(f"{where}.{key}: required")
        if kind == "email" and not isinstance(settings["to"], list | str):
            raise UserError(f"{where}.to: expected a list of addresses")
        out[str(name)] = {**settings, "type": kind}
    return out


def _parse_rule(raw: Any, where: str, channels: dict) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise UserError(f"{where}: expected a mapping with at least a name")
    bad = sorted(set(raw) - RULE_KEYS)
    if bad:
        raise UserError(f"{where}.{bad[0]}: unknown key; expected {', '.join(sorted(RULE_KEYS))}")
    kind = raw.get("kind", "metric")
    if kind not in KINDS:
        raise UserError(f"{where}.kind: {kind!r}; expected one of {', '.join(KINDS)}")
    metric, condition = raw.get("metric"), None
    if kind == "metric":
        if not isinstance(metric, str):
            raise UserError(f"{where}.metric: required for a metric rule (e.g. error_rate)")
        metric = canonical(metric)
        if metric not in RUN_METRICS:
            raise UserError(
                f"{where}.metric: {metric!r} is not a metric of the marts; expected one of {', '.join(RUN_METRICS)}"
            )
        if "condition" not in raw:
            raise UserError(f"{where}.condition: required for a metric rule (e.g. '> 0.1')")
        condition = parse_condition(raw["condition"], f"{where}.condition")
    min_runs = raw.get("min_runs", 1)
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 0:
        raise UserError(f"{where}.min_runs: expected a whole number >= 0")
    return Rule(
        name=raw["name"], kind=kind, metric=metric, agent=str(raw.get("agent", "*")),
        window=parse_duration(raw.get("window", "1h"), f"{where}.window"), condition=condition,
        min_runs=min_runs, severity=_severity(raw.get("severity", "warning"), f"{where}.severity"),
        cooldown=parse_duration(raw.get("cooldown", "1h"), f"{where}.cooldown"),
        channels=_channel_list(raw.get("channels"), f"{where}.channels", channels),
        description=str(raw.get("description", "")),
    )  # fmt: skip


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_env(value: Any, where: str) -> Any:
    """`${NAME}` replaced from the environment, at send time; a missing variable is an error
    that names the variable, never its value."""
    if isinstance(value, list):
        return [resolve_env(v, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise LookupError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(sub, value)


def severity_at_least(severity: str, floor: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)
