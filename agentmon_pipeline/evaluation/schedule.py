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


# a cron field: *, a value, a range, each with an optional /step, comma-separated (names for
# months and days of the week); checked here, in plain Python; Dagster checks it again when it builds the schedule
_CRON_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_NAMES = ({}, {}, {}, {m: i + 1 for i, m in enumerate(_MONTHS)}, {d: i for i, d in enumerate(_WEEKDAYS)})


def is_cron(text: str) -> bool:
    """A standard five-field cron expression (minute hour day-of-month month day-of-week), or
    one of the @ aliases."""
    if text.strip() in ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"):
        return True
    fields = text.split()
    if len(fields) != 5:
        return False

    def value(part: str, index: int) -> int | None:
        low, high = _CRON_FIELDS[index]
        number = _CRON_NAMES[index].get(part.lower(), int(part) if part.isdigit() else None)
        return number if number is not None and low <= number <= high else None

    for index, field in enumerate(fields):
        for item in field.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return False
            if base == "*":
                continue
            ends = base.split("-")
            if len(ends) > 2 or any(value(end, index) is None for end in ends):
                return False
            if len(ends) == 2 and value(ends[0], index) > value(ends[1], index):
                return False
    return True
