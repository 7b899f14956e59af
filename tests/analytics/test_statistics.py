"""Anomaly scores, forecasts, budgets and version comparisons on series with known answers
(fixed seeds: the figures are the same on every run)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from agentmon_pipeline.analytics.anomalies import DEFAULT_THRESHOLDS, rate_scores, score_series
from agentmon_pipeline.analytics.budgets import Budget, burn, parse_budgets
from agentmon_pipeline.analytics.forecast import clean_outliers, forecast_series
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


def test_the_backtest_refits_at_every_origin_and_scales_each_fold_by_its_training_days():
    """A fold's forecast is what the model says from the days before its origin alone, and its
    MASE scale comes from those days only (issue 17: the scale included the held-out days). The
    interval coverage out of sample is in test_forecast_coverage.py."""
    values = weekly_days(3, 30)
    result = forecast_series(values, 14, non_negative=False)
    model, naive = [], []
    for origin in range(16, 30):  # every day from the weekly model's first (16 days of history)
        train, test = values[:origin], values[origin : origin + 14]
        fold = forecast_series(train, test.size, non_negative=False)
        assert fold.reason == ""  # nothing cleaned: the fold sees the same days as the backtest
        scale = np.abs(train[7:] - train[:-7]).mean()
        model.append(np.abs(fold.yhat - test) / scale)
        naive.append(np.abs(np.resize(train[-7:], test.size) - test) / scale)
    assert result.backtest_folds == 14
    assert result.backtest_mase == pytest.approx(np.concatenate(model).mean(), rel=1e-9)
    assert result.backtest_mase_snaive == pytest.approx(np.concatenate(naive).mean(), rel=1e-9)
    assert 0 <= result.backtest_coverage_80 <= result.backtest_coverage_95 <= 1
    # as many folds as the history allows, at most four weeks of origins; none before the weekly
    # model's first 16 days
    assert [forecast_series(weekly_days(1, n), 14).backtest_folds for n in (16, 20, 44, 90)] == [0, 4, 28, 28]


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
    t1, t2 = t0 + timedelta(days=8), t0 + timedelta(days=13)
    parts = [
        _runs(rng, "1.0", t0, 192, 800),
        _runs(rng, "1.1", t1, 120, 1600),
        _runs(rng, "1.0", t2, 73, 800),
    ]
    runs = pl.concat([pl.DataFrame(p) for p in parts])
    deployments = pl.DataFrame({"agent_id": ["bot"] * 4, "agent_version": ["1.0", "1.1", "1.0", "1.0"],
                                "deployed_at": [t0, t1, t2, t2 + timedelta(hours=1)]})  # fmt: skip
    assert [(v, at) for _, v, at in switches(runs, deployments)] == [("1.0", t0), ("1.1", t1), ("1.0", t2)]
    found = {
        (c.baseline_version, c.candidate_version, c.metric): c for c in compare_versions(runs, deployments)
    }
    forward, back = found[("1.0", "1.1", "p95_duration_ms")], found[("1.1", "1.0", "p95_duration_ms")]
    assert (forward.verdict, back.verdict) == ("regressed", "improved")
    assert (forward.switched_at, back.switched_at) == (t1, t2)
    # the windows stop at the next switch: 1.1 ran for 4 whole days (its last run 15 minutes before
    # the fifth ended), its final look; the restored 1.0 has run 3 days, its first look
    assert forward.window_hours == 96 and forward.n_candidate == 96 * 4 and back.window_hours == 72
    assert 0.7 < forward.effect < 1.3  # p95 about doubled
    # without deployments a version goes live at its first run, and the rollback is invisible:
    # that is what recording activations in the registry buys
    assert {(c.baseline_version, c.candidate_version) for c in compare_versions(runs)} == {("1.0", "1.1")}


def test_a_version_waits_for_a_whole_day_and_its_unpriced_runs_are_not_free():
    import polars as pl

    from agentmon_pipeline.analytics.versions import compare_versions

    rng = np.random.default_rng(5)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    young = pl.concat(
        [
            pl.DataFrame(_runs(rng, "1", t0, 120, 900)),
            pl.DataFrame(_runs(rng, "2", t0 + timedelta(days=5), 12, 900)),
        ]
    )
    assert {(c.verdict, c.test) for c in compare_versions(young)} == {
        ("inconclusive", "first verdict after 3 days of 2 (has 0.5); no single day decides")
    }
    # half of the candidate's runs use a model without a price: their cost is unknown, not $0
    old, new = _runs(rng, "1", t0, 120, 900), _runs(rng, "2", t0 + timedelta(days=5), 73, 900)
    new["cost_usd"] = [c if i % 2 else None for i, c in enumerate(new["cost_usd"])]
    found = {c.metric: c for c in compare_versions(pl.concat([pl.DataFrame(old), pl.DataFrame(new)]))}
    cost = found["cost_per_run_usd"]
    assert cost.window_hours == 72 and abs(cost.effect) < 0.1 and cost.verdict != "improved"


def test_an_abnormal_day_across_two_periods_decides_nothing_and_a_uniform_change_stands():
    """The day test leaves out each day of calendar time (one 24-hour period from the switch, or
    two adjacent ones) that is abnormal; a step of every day is not one day's."""
    from agentmon_pipeline.analytics.versions import day_test

    rng = np.random.default_rng(3)
    history = rng.normal(0, 0.1, 28)
    base = history[-10:]
    residuals, df = history - history.mean(), 27
    # a 10x cost calendar day split 17 h / 7 h across the candidate's days 2 and 3
    spiked = rng.normal(0, 0.1, 7) + np.array([0, 0, np.log(7.4), np.log(3.6), 0, 0, 0])
    found = day_test(base, spiked, residuals, df, 0.025)
    assert found.p_value < 0.025 and found.decides and found.day == (10 + 2, 10 + 3)
    assert abs(found.without_day) < 0.1 < found.effect
    uniform = rng.normal(0, 0.1, 3) + np.log(1.8)
    stands = day_test(base, uniform, residuals, df, 0.025)
    assert stands.p_value < 1e-4 and not stands.decides and stands.day == ()
    # a change of every day that stands, and an abnormal day that carries most of its size: named
    carried = rng.normal(0, 0.1, 7) + np.log(1.35) + np.array([0, 0, 0, np.log(20), 0, 0, 0])
    most = day_test(base, carried, residuals, df, 0.025)
    assert not most.decides and 10 + 3 in most.day and 0.1 < most.without_day < most.effect / 2
