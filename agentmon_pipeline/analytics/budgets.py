"""Monthly budgets from `agentmon.yaml`: spend to date, projected month-end spend with its
interval, and the day the budget runs out.

    budgets:
      monthly_usd: 500          # all agents together (optional)
      agents:                   # per agent (optional)
        support-bot: 100

The projection adds to the spend so far the simulated cost of the month's remaining days, from
the daily cost forecast (forecast.py): its median is the projected month-end spend, its 10-90%
and 2.5-97.5% quantiles the 80% and 95% intervals. The run-out date is the first day on which the
spend so far plus the forecast's expected daily costs reaches the budget (the day it was reached,
when it already was). Status: `over` (already spent), `at_risk` (the 80% interval reaches the
budget), `ok`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agentmon_pipeline.analytics.forecast import forecast_series, simulate_sums
from agentmon_pipeline.errors import UserError


@dataclass(frozen=True)
class Budget:
    agent_id: str | None  # None: all agents together
    monthly_usd: float


def parse_budgets(section: Any, path: Path | str = "agentmon.yaml") -> list[Budget]:
    if section is None:
        return []
    if not isinstance(section, dict):
        raise UserError(
            f"{path}: budgets: expected a mapping such as {{monthly_usd: 500, agents: {{my-agent: 100}}}}"
        )
    bad = sorted(set(section) - {"monthly_usd", "agents"})
    if bad:
        raise UserError(f"{path}: budgets.{bad[0]}: unknown key; expected monthly_usd or agents")
    out = []

    def amount(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise UserError(f"{path}: {key}: expected a positive amount in USD, got {value!r}")
        return float(value)

    if "monthly_usd" in section:
        out.append(Budget(None, amount("budgets.monthly_usd", section["monthly_usd"])))
    agents = section.get("agents") or {}
    if not isinstance(agents, dict):
        raise UserError(f"{path}: budgets.agents: expected a mapping of agent id to monthly USD")
    for agent_id, value in agents.items():
        out.append(Budget(str(agent_id), amount(f"budgets.agents.{agent_id}", value)))
    return out


@dataclass
class BudgetBurn:
    agent_id: str | None
    month: date
    budget_usd: float
    spend_to_date: float
    projected_month_end: float
    projected_lower_80: float
    projected_upper_80: float
    projected_lower_95: float
    projected_upper_95: float
    runs_out_on: date | None
    status: str
    as_of: date
    forecast_model: str


def burn(budget: Budget, daily_cost: dict[date, float], as_of: date) -> BudgetBurn:
    """`daily_cost`: cost per UTC day of the agent (or in total), complete up to `as_of`."""
    month = as_of.replace(day=1)
    last_day = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    days = sorted(d for d in daily_cost if d <= as_of)
    history = np.array(
        [daily_cost.get(d, 0.0) for d in _all_days(days[0], as_of)] if days else [], dtype=float
    )
    spent_by_day = {d: daily_cost.get(d, 0.0) for d in _all_days(month, as_of)}
    spend = float(sum(spent_by_day.values()))
    remaining = (last_day - as_of).days
    if history.size and remaining > 0:
        forecast = forecast_series(history, remaining)
        sums = simulate_sums(forecast, history, remaining)
        expected = forecast.yhat
        model = forecast.model
    else:
        sums, expected, model = np.zeros(1), np.zeros(max(remaining, 0)), "none"
    total = spend + sums
    q = np.percentile(total, [50, 10, 90, 2.5, 97.5])
    runs_out = None
    running = 0.0
    for d in _all_days(month, as_of):
        running += spent_by_day[d]
        if running >= budget.monthly_usd:
            runs_out = d
            break
    if runs_out is None:
        running = spend
        for i, cost in enumerate(expected):
            running += max(float(cost), 0.0)
            if running >= budget.monthly_usd:
                runs_out = as_of + timedelta(days=i + 1)
                break
    status = "over" if spend >= budget.monthly_usd else "at_risk" if q[2] >= budget.monthly_usd else "ok"
    return BudgetBurn(budget.agent_id, month, budget.monthly_usd, spend, float(q[0]), float(q[1]), float(q[2]),
                      float(q[3]), float(q[4]), runs_out, status, as_of, model)  # fmt: skip


def _all_days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
