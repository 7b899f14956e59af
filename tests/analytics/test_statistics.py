"""Anomaly scores, forecasts, budgets and version comparisons on series with known answers
(fixed seeds: the figures are the same on every run)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from agentmon_pipeline.analytics.anomalies import DEFAULT_THRESHOLDS, rate_scores, score_series
from agentmon_pipeline.analytics.budgets import Budget, burn, parse_budgets
from agentmon_pipeline.analytics.forecast import clean_outliers, forecast_series
from agentmon_pipeline.analytics.versions import compare_runs
from agentmon_pipeline.errors import UserError

HOURS = np.arange(24 * 30)


def hourly(seed: int) -> np.ndarray:
    """30 days of hourly points with a daily cycle, quieter weekends and noise."""
    rng = np.random.default_rng(seed)
    daily = 10 * np.sin(2 * np.pi * HOURS / 24)
    weekend = 5 * ((HOURS // 24) % 7 >= 5)
    return 100 + daily - weekend + rng.normal(0, 3, HOURS.size)


def test_seasonal_method_finds_a_spike_with_few_false_alarms():
    threshold = DEFAULT_THRESHOLDS["seasonal"]
    false_alarms, found = [], 0
    for seed in range(10):
        series = hourly(seed)
        spike_at = 200 + 37 * seed
        series[spike_at] += 25  # about 8 standard deviations of the noise, at any hour of the cycle
        scores = score_series(series, "seasonal", 10, (24, 168))
        flagged = set(np.flatnonzero(np.abs(scores.score) >= threshold))
        found += spike_at in flagged
        false_alarms.append(len(flagged - {spike_at}))
        assert scores.note == "robust level x profile fit (weekday and weekend profiles of 24 buckets)"
    print(f"\nseasonal: spike found in {found}/10 months; false alarms per month {false_alarms}")
    assert found == 10 and np.mean(false_alarms) <= 1.0


def test_the_cycle_itself_is_not_an_anomaly_for_the_seasonal_method_but_is_for_zscore():
    series = hourly(3)
    seasonal = np.abs(score_series(series, "seasonal", 10, (24, 168)).score) >= DEFAULT_THRESHOLDS["seasonal"]
    zscore = np.abs(score_series(series, "zscore", 10, (24, 168)).score) >= DEFAULT_THRESHOLDS["zscore"]
    assert seasonal.sum() <= 3 and zscore.sum() > 5 * seasonal.sum()


def test_short_series_falls_back_to_the_robust_score_and_says_so():
    scores = score_series(hourly(1)[:30], "seasonal", 10, (24, 168))
    assert scores.method == "mad" and "too short" in scores.note


def test_rates_are_judged_by_their_sample_size():
    expected = np.array([0.05, 0.05, 0.05])
    score = rate_scores(np.array([1, 30, 3]), np.array([2, 60, 60]), expected)
    assert abs(score[0]) < 2  # 1 error in 2 runs: p = 0.0975, not an anomaly
    assert score[1] > 8  # 30 in 60 is
    assert abs(score[2]) < 1  # 3 in 60 is what 5% looks like


def weekly_days(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = np.arange(n)
    return 50 + 8 * np.sin(2 * np.pi * d / 7) - 6 * (d % 7 >= 5) + rng.normal(0, 2, n)


def test_forecast_beats_seasonal_naive_and_intervals_cover_their_share():
    inside_80 = inside_95 = total = 0
    beat = 0
    for seed in range(20):
        series = weekly_days(seed, 58)
        history, future = series[:44], series[44:]
        result = forecast_series(history, 14)
        assert result.model == "holt_winters_damped_weekly" and result.backtest_folds == 3
        beat += result.backtest_mase < result.backtest_mase_snaive
        inside_80 += np.sum((future >= result.lower_80) & (future <= result.upper_80))
        inside_95 += np.sum((future >= result.lower_95) & (future <= result.upper_95))
        total += future.size
    print(f"\nforecast: beats seasonal-naive in {beat}/20 backtests; coverage 80%: {inside_80 / total:.3f}, "
          f"95%: {inside_95 / total:.3f}")  # fmt: skip
    assert beat >= 15
    assert 0.70 <= inside_80 / total <= 0.90 and 0.88 <= inside_95 / total <= 0.99


def test_short_histories_get_simpler_models_with_a_reason():
    assert forecast_series(weekly_days(1, 10), 14).model == "holt_damped"
    short = forecast_series(weekly_days(1, 4), 14)
    assert short.model == "simple_exponential_smoothing" and "shorter than a week" in short.reason
    tiny = forecast_series(np.array([3.0, 4.0]), 14)
    assert tiny.model == "last_value" and "fewer than 3 days" in tiny.reason and np.isnan(tiny.lower_95).all()


def test_a_one_day_spike_is_cleaned_before_fitting():
    series = weekly_days(2, 30)
    series[20] *= 10
    cleaned, n = clean_outliers(series)
    assert n == 1 and cleaned[20] < 80
    assert forecast_series(series, 14).reason.startswith("1 outlier day")


def test_budget_burn_of_a_steady_spender():
    daily = {date(2026, 11, d): 10.0 for d in range(1, 21)}  # 10 USD a day through the 20th
    status = burn(Budget(None, 250.0), daily, date(2026, 11, 20))
    assert status.spend_to_date == 200.0
    assert status.projected_month_end == pytest.approx(300.0, abs=1.0)
    assert status.runs_out_on == date(2026, 11, 25) and status.status == "at_risk"
    assert burn(Budget(None, 150.0), daily, date(2026, 11, 20)).runs_out_on == date(2026, 11, 15)
    assert burn(Budget("x", 1000.0), daily, date(2026, 11, 20)).status == "ok"


def test_budget_config_mistakes_name_the_key():
    assert parse_budgets({"monthly_usd": 500, "agents": {"bot": 50}}) == [
        Budget(None, 500.0),
        Budget("bot", 50.0),
    ]
    with pytest.raises(UserError, match="budgets.agents.bot: expected a positive amount"):
        parse_budgets({"agents": {"bot": -1}})
    with pytest.raises(UserError, match="budgets.monthly: unknown key"):
        parse_budgets({"monthly": 5})


def test_version_comparison_finds_a_slower_version_and_not_an_equal_one():
    rng = np.random.default_rng(4)
    ok = lambda n: rng.random(n) < 0.95
    base_ms, cost = rng.lognormal(7, 0.4, 300), rng.lognormal(-4, 0.3, 300)
    slower = compare_runs(
        ok(300), ok(300), base_ms, rng.lognormal(7, 0.4, 300) * 1.8, cost, rng.lognormal(-4, 0.3, 300)
    )
    verdicts = {r["metric"]: r["verdict"] for r in slower}
    assert verdicts["p95_duration_ms"] == "regressed" and verdicts["success_rate"] != "regressed"
    latency = next(r for r in slower if r["metric"] == "p95_duration_ms")
    assert latency["ci"][0] < 0.8 < latency["ci"][1]  # the true p95 ratio - 1
    alarms = 0
    for _ in range(100):  # A/A: the same process on both sides
        same = compare_runs(ok(200), ok(200), rng.lognormal(7, 0.4, 200), rng.lognormal(7, 0.4, 200),
                            rng.lognormal(-4, 0.3, 200), rng.lognormal(-4, 0.3, 200))  # fmt: skip
        alarms += any(r["verdict"] == "regressed" for r in same)
    print(f"\nversion comparison: A/A false alarms {alarms}/100 (three metrics, Holm)")
    assert alarms <= 7


def _runs(rng, version: str, start: datetime, hours: int, ms: float):
    """Four runs an hour of one version from `start`."""
    times = [start + timedelta(minutes=15 * i) for i in range(hours * 4)]
    return {"agent_id": ["bot"] * len(times), "agent_version": [version] * len(times), "started_at": times,
            "is_success": list(rng.random(len(times)) < 0.97), "duration_ms": list(rng.lognormal(np.log(ms), 0.3, len(times))),
            "cost_usd": list(rng.lognormal(-5, 0.2, len(times)))}  # fmt: skip


def test_version_comparison_switches_at_activations_and_rollbacks():
    """1.0 live, 1.1 activated (twice as slow), then rolled back to 1.0: two comparisons, at the
    registry's times, each against the version live just before."""
    import polars as pl

    from agentmon_pipeline.analytics.versions import compare_versions, switches

    rng = np.random.default_rng(11)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    t1, t2 = t0 + timedelta(days=4), t0 + timedelta(days=7)
    parts = [_runs(rng, "1.0", t0, 96, 800), _runs(rng, "1.1", t1, 72, 1600), _runs(rng, "1.0", t2, 72, 800)]
    runs = pl.concat([pl.DataFrame(p) for p in parts])
    deployments = pl.DataFrame({"agent_id": ["bot"] * 4, "agent_version": ["1.0", "1.1", "1.0", "1.0"],
                                "deployed_at": [t0, t1, t2, t2 + timedelta(hours=1)]})  # fmt: skip
    assert [(v, at) for _, v, at in switches(runs, deployments)] == [("1.0", t0), ("1.1", t1), ("1.0", t2)]
    found = {(c.baseline_version, c.candidate_version, c.metric): c for c in compare_versions(runs, deployments)}
    forward, back = found[("1.0", "1.1", "p95_duration_ms")], found[("1.1", "1.0", "p95_duration_ms")]
    assert (forward.verdict, back.verdict) == ("regressed", "improved")
    assert (forward.switched_at, back.switched_at) == (t1, t2)
    # the windows stop at the next switch: 1.1 ran for 3 days, so each side covers 3 days at most
    assert forward.window_hours <= 72 and forward.n_candidate <= 72 * 4
    assert 0.7 < forward.effect < 1.3  # p95 about doubled
    # without deployments a version goes live at its first run, and the rollback is invisible:
    # that is what recording activations in the registry buys
    assert {(c.baseline_version, c.candidate_version) for c in compare_versions(runs)} == {("1.0", "1.1")}


def test_one_family_per_refresh_keeps_false_alarms_rare():
    """8 agents whose new version behaves exactly like the old one: with Holm over the whole
    refresh, few refreshes report any regression (24 separate 5% tests would most of the time)."""
    import polars as pl

    from agentmon_pipeline.analytics.versions import compare_versions

    rng = np.random.default_rng(21)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    refreshes, alarmed = 30, 0
    for _ in range(refreshes):
        frames = []
        for agent in range(8):
            for version, start in (("1", t0), ("2", t0 + timedelta(days=2))):
                part = _runs(rng, version, start, 48 if version == "1" else 24, 900)
                frames.append(pl.DataFrame({**part, "agent_id": [f"a{agent}"] * len(part["agent_id"])}))
        found = compare_versions(pl.concat(frames))
        assert len(found) == 24
        alarmed += any(c.verdict == "regressed" for c in found)
    print(f"\nA/A refreshes with a false alarm: {alarmed}/{refreshes} (8 agents x 3 metrics, Holm over the refresh)")
    assert alarmed <= 3


def test_a_version_waits_for_a_whole_day_and_its_unpriced_runs_are_not_free():
    import polars as pl

    from agentmon_pipeline.analytics.versions import compare_versions

    rng = np.random.default_rng(5)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    young = pl.concat([pl.DataFrame(_runs(rng, "1", t0, 72, 900)), pl.DataFrame(_runs(rng, "2", t0 + timedelta(days=3), 12, 900))])
    assert {(c.verdict, c.test) for c in compare_versions(young)} == {
        ("inconclusive", "needs 24 hours of each version around the switch, has 12")
    }
    # half of the candidate's runs use a model without a price: their cost is unknown, not $0
    old, new = _runs(rng, "1", t0, 72, 900), _runs(rng, "2", t0 + timedelta(days=3), 49, 900)
    new["cost_usd"] = [c if i % 2 else None for i, c in enumerate(new["cost_usd"])]
    found = {c.metric: c for c in compare_versions(pl.concat([pl.DataFrame(old), pl.DataFrame(new)]))}
    cost = found["cost_per_run_usd"]
    assert cost.window_hours == 48 and abs(cost.effect) < 0.1 and cost.verdict != "improved"
