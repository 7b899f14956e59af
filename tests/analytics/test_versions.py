"""Production version comparisons on traffic drawn as real traffic is (`tests/traffic.py`: Poisson
runs with daily and weekly cycles, day-to-day effects of sd 0.1 with AR(1) over days, hourly AR(1)
noise, lognormal latency and cost). Fixed seeds; docs/analytics.md quotes the printed figures."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import polars as pl

from agentmon_pipeline.analytics.versions import compare_versions
from tests.traffic import T0, Shape, runs

SHAPE = Shape(day_sd=0.1)
INDEPENDENT_DAYS = Shape(
    day_sd=0.1, day_phi=0.0
)  # the set-up: day effects independent from day to day
HISTORY_DAYS = 28  # an established agent: the comparison's whole history


def deployment(seed: int, live_hours: float, slower: float = 1.0, agent: str = "bot",
               costly_day: float | None = None, shape: Shape = SHAPE, costlier: float = 3.0):  # fmt: skip
    """28 days of version 1, then version 2 for `live_hours` (its runs `slower` times as long; with
    `costly_day`, the 24 hours from that many days after the switch (negative: before; a fraction:
    across two of the comparison's days, as a calendar day is) cost `costlier` times as much)."""
    r = runs(seed, HISTORY_DAYS + 8, shape)
    switch = T0 + timedelta(days=HISTORY_DAYS, hours=7)
    frame = pl.DataFrame({
        "agent_id": agent, "started_at": pl.Series(r["started_at"]).dt.replace_time_zone("UTC"),
        "is_success": r["is_success"], "duration_ms": r["duration_ms"], "cost_usd": r["cost_usd"],
    }).filter(pl.col("started_at") < switch + timedelta(hours=live_hours))  # fmt: skip
    after = pl.col("started_at") >= switch
    frame = frame.with_columns(
        pl.when(after).then(pl.lit("2")).otherwise(pl.lit("1")).alias("agent_version"),
        pl.when(after)
        .then(pl.col("duration_ms") * slower)
        .otherwise(pl.col("duration_ms"))
        .alias("duration_ms"),
    )
    if costly_day is not None:
        start = switch + timedelta(days=costly_day)
        inside = pl.col("started_at").is_between(start, start + timedelta(days=1), closed="left")
        frame = frame.with_columns(
            pl.when(inside).then(pl.col("cost_usd") * costlier).otherwise(pl.col("cost_usd"))
        )
    return frame


def any_verdict(found) -> bool:
    return any(c.verdict in ("regressed", "improved") for c in found)


def test_identical_versions_rarely_get_a_verdict_at_any_age():
    """A/A: P(any false verdict over the three metrics) at 12 h, 36 h, 3 days and 7 days of the
    candidate, and over a week of refreshes every 12 hours (ever flagged)."""
    seeds = range(60)
    rates = {}
    for hours in (12, 36, 72, 168):
        rates[f"{hours} h"] = np.mean([any_verdict(compare_versions(deployment(s, hours))) for s in seeds])
    week = [
        any(any_verdict(compare_versions(deployment(s, 12 * k))) for k in range(1, 15)) for s in seeds[:30]
    ]
    rates["week of refreshes"] = float(np.mean(week))
    print("\nproduction A/A, P(any false verdict): " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    assert all(v <= 0.07 for k, v in rates.items() if k != "week of refreshes")
    assert rates["week of refreshes"] <= 0.10


def test_eight_agents_in_one_refresh_and_one_abnormal_day():
    """8 agents whose new version changed nothing, judged in one refresh (Holm over all of them);
    and one abnormal day inside either window never decides a verdict on its own: 3x cost on one
    of the comparison's days, or on 24 hours across two of them (a calendar day: the demo's cost
    spike), and 10x cost across two days of a 7-day window."""
    alarms = []
    for refresh in range(15):
        frames = [deployment(100 * refresh + a, 96, agent=f"agent-{a}") for a in range(8)]
        alarms.append(any_verdict(compare_versions(pl.concat(frames))))
    cases = [(96, day, 3.0) for day in (-2, 1, -2.4, 1.7)] + [(174, 4.3, 10.0)]
    costly = [next(c for c in compare_versions(deployment(s, hours, costly_day=day, costlier=factor))
                   if c.metric == "cost_per_run_usd") for s in range(12) for hours, day, factor in cases]  # fmt: skip
    decided = np.mean([c.verdict in ("regressed", "improved") for c in costly])
    print(f"\n8 agents in one refresh: P(any false verdict) {np.mean(alarms):.3f}; "
          f"one day at 3x or 10x cost in the window: verdict {decided:.3f}")  # fmt: skip
    assert np.mean(alarms) <= 0.10 and decided <= 0.05


def test_a_slower_version_is_found_and_says_what_it_could_detect():
    """A true slowdown of every run (p95 and the typical run both +30%), after 3 and 7 days of the
    candidate: how often a latency metric is judged regressed (never improved), and the detectable
    change each comparison states. The ceiling: a z-test that knows the true spread of the 3-day
    effect of typical latency (measured from A/A deployments) at the level each test of the
    procedure gets (two looks, four metrics: 0.05 / 8, two-sided)."""
    from scipy.stats import norm

    found, improved, mde = {}, 0, []
    for slower, days, shape in (
        (1.3, 3, SHAPE),
        (1.3, 7, SHAPE),
        (1.8, 3, SHAPE),
        (1.3, 3, INDEPENDENT_DAYS),
    ):
        hits = 0
        for seed in range(40):
            judged = compare_versions(deployment(seed, 24 * days + 6, slower, shape=shape))
            latency = [c for c in judged if "duration" in c.metric]
            hits += any(c.verdict == "regressed" for c in latency)
            improved += any(c.verdict == "improved" for c in latency)
            if (slower, days, shape) == (1.3, 3, SHAPE):
                mde.append(
                    float(re.search(r"detectable at 80% power: (\d+)%", latency[0].test).group(1)) / 100
                )
        found[
            f"+{slower - 1:.0%} after {days} days" + (", independent days" if shape.day_phi == 0 else "")
        ] = hits / 40
    null = [next(c for c in compare_versions(deployment(seed, 24 * 3 + 6)) if c.metric == "typical_duration_ms").effect
            for seed in range(100, 160)]  # fmt: skip
    spread = float(np.std(np.log1p(null)))
    ceiling = float(norm.sf(norm.isf(0.05 / 16) - np.log(1.3) / spread))
    print("\nproduction latency regression found: " + ", ".join(f"{k} {v:.3f}" for k, v in found.items())
          + f"; typical latency detectable at 80% power after 3 days: median {np.median(mde):.0%}; its 3-day "
          f"effect's spread under A/A {spread:.3f} (log), a known-variance test's power for +30% {ceiling:.2f}")  # fmt: skip
    assert improved == 0
    assert (
        found["+80% after 3 days"] >= 0.95 and found["+30% after 7 days"] > found["+30% after 3 days"] >= 0.5
    )
    assert found["+30% after 3 days, independent days"] >= 0.7
    assert (
        ceiling < 0.8
    )  # the issue's +30%-in-3-days goal is beyond a test at this level and these day effects
