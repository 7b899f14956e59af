"""Traffic drawn the way real traffic is, for the statistics' simulations (fixed seeds).

Runs arrive as a Poisson process whose hourly rate has a daily cycle (quiet nights, a busy
afternoon), quieter weekends, a slow drift, and day-to-day effects that are autocorrelated
(AR(1) over days) plus an hourly AR(1) wobble. Latency and cost per run are lognormal (heavy
right tails) with their own daily cycle (latency is higher at peak load) and day effects. Nothing
here is Gaussian noise of constant spread.

`hourly(...)` gives the hourly series the anomaly detector sees (run counts, cost sums); `runs(...)`
gives the runs themselves, for version comparisons. Everything is vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

T0 = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday


@dataclass
class Shape:
    peak: float = 9.0  # runs per hour at the busiest hour of a weekday
    night: float = 0.3  # the quietest hour's share of the peak
    weekend: float = 0.5  # weekend volume against weekdays
    drift: float = 0.2  # growth of volume over 30 days
    day_sd: float = 0.15  # sd of the day effect (log scale), AR(1) over days with phi day_phi
    day_phi: float = 0.6
    hour_phi: float = 0.8  # hourly AR(1) of the log rate
    hour_sd: float = 0.1  # its innovation sd (stationary sd = hour_sd / sqrt(1 - phi^2))
    latency_ms: float = 1500.0  # median latency
    latency_sigma: float = 0.6
    latency_cycle: float = 0.3  # latency +-30% over the day (slower at peak)
    cost_usd: float = 0.01  # median cost per run
    cost_sigma: float = 1.0
    error_rate: float = 0.04


def _ar1(rng, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series (scipy's lfilter: no Python loop over the points)."""
    from scipy.signal import lfilter

    shocks = rng.normal(0, sd, n)
    shocks[0] /= np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], shocks)


def rates(rng, days: int, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """The hourly Poisson rate, and the hourly log effect shared by latency and cost."""
    hours = np.arange(days * 24)
    hour_of_day, day = hours % 24, hours // 24
    cycle = shape.night + (1 - shape.night) * np.exp(-((hour_of_day - 14) ** 2) / 18)
    weekly = np.where((day % 7) >= 5, shape.weekend, 1.0)  # T0 is a Monday
    drift = 1 + shape.drift * hours / (30 * 24)
    day_effect = _ar1(rng, days, shape.day_phi, shape.day_sd * np.sqrt(1 - shape.day_phi**2))[day]
    wobble = _ar1(rng, hours.size, shape.hour_phi, shape.hour_sd)
    return shape.peak * cycle * weekly * drift * np.exp(day_effect + wobble), day_effect


def hourly(seed: int, days: int = 30, shape: Shape | None = None) -> dict[str, np.ndarray]:
    """Hourly run counts and cost sums (the per-run costs are lognormal: the sum of an hour is a
    compound Poisson sum with a heavy tail)."""
    shape = shape or Shape()
    rng = np.random.default_rng(seed)
    lam, day_effect = rates(rng, days, shape)
    counts = rng.poisson(lam)
    hour_of_run = np.repeat(np.arange(lam.size), counts)
    cost = rng.lognormal(np.log(shape.cost_usd) + day_effect[hour_of_run] * 0.5, shape.cost_sigma)
    return {"runs": counts.astype(float), "cost_usd": np.bincount(hour_of_run, cost, lam.size), "rate": lam}


def runs(seed: int, days: int, shape: Shape | None = None, start: datetime = T0) -> dict[str, np.ndarray]:
    """Production runs: started_at, is_success, duration_ms, cost_usd (numpy arrays, in time order)."""
    shape = shape or Shape()
    rng = np.random.default_rng(seed)
    lam, day_effect = rates(rng, days, shape)
    counts = rng.poisson(lam)
    hour = np.repeat(np.arange(lam.size), counts)
    seconds = hour * 3600 + rng.uniform(0, 3600, hour.size)
    order = np.argsort(seconds, kind="stable")
    hour, seconds = hour[order], seconds[order]
    hour_of_day = hour % 24
    load = np.exp(-((hour_of_day - 14) ** 2) / 18)  # 0 at night, 1 at the peak
    effect = day_effect[hour] + _ar1(rng, lam.size, 0.8, 0.05)[hour]
    latency = rng.lognormal(np.log(shape.latency_ms) + np.log1p(shape.latency_cycle) * (2 * load - 1) + effect,
                            shape.latency_sigma)  # fmt: skip
    cost = rng.lognormal(np.log(shape.cost_usd) + 0.5 * effect, shape.cost_sigma)
    fail = rng.random(hour.size) < shape.error_rate * np.exp(effect)
    started = np.datetime64(start.replace(tzinfo=None), "us") + (seconds * 1e6).astype("timedelta64[us]")
    return {
        "started_at": started,
        "hour": hour,
        "is_success": ~fail,
        "duration_ms": latency,
        "cost_usd": cost,
    }


def start_plus(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)
