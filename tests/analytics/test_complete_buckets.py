"""Only complete buckets are judged: the hour of the latest production run, and the current hour,
are still filling. Pure logic over a stand-in warehouse (no Dagster, no dbt)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from agentmon_pipeline.analytics.anomalies import score_series
from agentmon_pipeline.analytics.compute import Readiness, finite
from agentmon_pipeline.analytics.engine import AnalyticsEngine, NotEnoughHistory


class Runs:
    """Answers the two questions the watermark asks: the latest and the first production run."""

    def __init__(self, first: datetime | None, last: datetime | None):
        self.first, self.last = first, last

    def scalar(self, sql, params=None):
        return self.first if "min(started_at)" in sql else self.last


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_the_hour_of_the_latest_run_fills_until_an_hour_after_its_end():
    engine = AnalyticsEngine(Runs(t(20, 9, 10), t(21, 13, 45)))
    assert engine.complete_until(now=t(21, 13, 50)) == t(21, 13)  # the current hour
    assert engine.complete_until(now=t(21, 14, 59)) == t(21, 13)  # its last files may still land
    assert engine.complete_until(now=t(21, 15, 0)) == t(21, 14)  # then it is complete
    assert engine.complete_until(now=t(28, 0)) == t(21, 14)  # history: the hours after it are never judged
    # a clock a little ahead in the data: the current hour is never complete
    assert AnalyticsEngine(Runs(t(20, 9), t(21, 15, 30))).complete_until(now=t(21, 14, 20)) == t(21, 14)


def test_complete_hours_and_days_count_from_the_first_run(monkeypatch):
    engine = AnalyticsEngine(Runs(t(20, 9, 10), t(21, 13, 45)))
    monkeypatch.setattr(engine, "complete_until", lambda now=None, agent_id=None: t(21, 13))
    assert (
        engine.complete_hours() == 27
    )  # 10:00 on the 20th (09:10-10:00 is not a whole hour) to 13:00 on the 21st
    assert engine.complete_days() == 1  # the 20th; the 21st is still filling
    empty = AnalyticsEngine(Runs(None, None))
    assert (empty.complete_until(), empty.complete_hours(), empty.complete_days()) == (None, 0, 0)


def test_a_forecast_without_enough_complete_days_waits_and_says_how_much(monkeypatch):
    import polars as pl

    engine = AnalyticsEngine(Runs(t(20, 9), t(21, 13)))
    monkeypatch.setattr(
        engine, "daily_series", lambda *a, **k: pl.DataFrame({"bucket_start": [t(20, 0)], "value": [1.0]})
    )
    with pytest.raises(
        NotEnoughHistory, match="forecasts need 3 complete days of history, agent bot has 1"
    ) as wait:
        engine.forecast("cost_usd", agent_id="bot")
    assert (wait.value.has, wait.value.needs, wait.value.unit) == (1, 3, "complete days")


def test_a_rate_without_an_expectation_is_not_judged():
    """The robust fallback has no expected value for its first points: those score 0, they do not
    become '0 errors against nan expected'."""
    values = np.array([0.0, 0.5, 0.0, 1.0, 0.0])
    k, n = np.array([0, 1, 0, 2, 0]), np.array([2, 2, 1, 2, 3])
    scores = score_series(values, "mad", 10, (24, 168), k=k, n=n)
    assert np.all(np.isnan(scores.expected)) and np.all(scores.score == 0)


def test_nothing_nan_or_infinite_reaches_a_table():
    import polars as pl

    frame = pl.DataFrame({"a": [1.0, float("nan"), float("inf"), -float("inf")], "b": ["x", "y", "z", "w"]})
    assert finite(frame)["a"].to_list() == [1.0, None, None, None]
    assert Readiness("forecasts", None, 0, 3, "complete days").status == "waiting"
    assert Readiness("forecasts", "bot", 3, 3, "complete days").status == "ready"


def test_a_count_or_a_cost_is_never_expected_below_zero():
    """The seasonal fit is a level times a profile: a quiet agent's night is expected at zero or
    above, and an hour with nothing in it is never an 'up' anomaly."""
    hours = np.arange(24 * 7)
    rng = np.random.default_rng(3)
    runs = rng.poisson(np.where(hours % 24 < 6, 0.0, 3.0)).astype(float)  # nothing at night, ever
    scores = score_series(runs, "seasonal", 10, (24, 168), kind="count")
    assert scores.expected.min() >= 0
    assert not np.any((runs == 0) & (scores.score > 0))
