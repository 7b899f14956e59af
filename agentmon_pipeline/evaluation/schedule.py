"""The nightly benchmark schedule's section of agentmon.yaml (`suites: {schedule: "<cron>"}`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentmon_pipeline.errors import UserError

DEFAULT_CRON = "0 2 * * *"


def parse_schedule(section: Any, path: Path | str = "agentmon.yaml") -> str:
    """`suites: {schedule: "<cron>"}`: when the nightly benchmark schedule runs (UTC); the
    default is 02:00 every day."""
    if section is None:
        return DEFAULT_CRON
    if not isinstance(section, dict):
        raise UserError(f"{path}: suites: expected a mapping such as {{schedule: '0 2 * * *'}}")
    bad = sorted(set(section) - {"schedule"})
    if bad:
        raise UserError(f"{path}: suites.{bad[0]}: unknown key; expected schedule")
    cron = section.get("schedule")
    if cron is not None and (not isinstance(cron, str) or not is_cron(cron)):
        raise UserError(f"{path}: suites.schedule: {cron!r} is not a cron expression (e.g. '0 2 * * *')")
    return cron or DEFAULT_CRON


def is_cron(text: str) -> bool:
    """A cron expression as Dagster's schedules take it: five fields (minute hour day-of-month
    month day-of-week, names allowed) or an @ alias, read by croniter (the library Dagster's own
    cron support is built on), on a day that exists (not February 30)."""
    from croniter import croniter

    if not croniter.is_valid(text):
        return False
    fields = croniter.expand(text)[0]
    if len(fields) != 5:  # a sixth field is seconds, or a year: not a Dagster schedule
        return False
    days, months = fields[2], fields[3]
    return not (months == [2] and len(days) == 1 and days[0] in (30, 31))
