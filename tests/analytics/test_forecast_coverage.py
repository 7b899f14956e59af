"""Forecasts judged out of sample on daily series drawn the way real traffic is (issue 17, item 5).

An agent's day: runs ~ Poisson(base x weekday share x day effect x trend), weekends at 30-70% of
weekdays, the day effect AR(1) on the log scale (phi 0.6, innovations sd 0.12: a busy day is
followed by a busy day), the base level from 5 to 500 runs a day (sparse agents included), with or
without a trend of 1-3% a day up or down; the day's cost is the sum of its runs' lognormal costs
(median 0.02 USD, sigma 1). The forecast sees the first n days and is judged on the next 14.
Fixed seeds: the figures are the same on every run (`pytest -s` prints them; docs/analytics.md quotes them).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from agentmon_pipeline.analytics.forecast import forecast_series, seasonal_naive

HORIZON = 14
LENGTHS = (16, 30, 60)  # days of history the product sees: the weekly model's least, a month, two
# Agents per history length; each gives a runs series and a cost series, so 2 x 150 = 300 series
# per cell. A series' 14 days are correlated (one level error moves them all), so the unit is the
# series: the per-series coverage has sd ~0.15-0.2, the standard error of a cell's coverage is
# ~0.2 / sqrt(300) ~ 0.011 (printed per cell): 0.75-0.85 is more than four standard errors wide.
REPLICATES = 150


def traffic(rng: np.random.Generator, days: int, trend: bool) -> tuple[np.ndarray, np.ndarray]:
    """(runs per day, cost per day) of one agent."""
    base = np.exp(rng.uniform(np.log(5), np.log(500)))
    weekday = np.exp(rng.normal(0, 0.1, 7))
    weekday[5:] *= rng.uniform(0.3, 0.7)
    dow = (rng.integers(7) + np.arange(days)) % 7
    phi, sd = 0.6, 0.12
    shocks = rng.normal(0, sd, days)
    shocks[0] /= np.sqrt(1 - phi**2)  # start in the stationary distribution
    day_effect = lfilter([1.0], [1.0, -phi], shocks)
    growth = rng.uniform(0.01, 0.03) * rng.choice([-1, 1]) if trend else 0.0
    runs = rng.poisson(base * weekday[dow] * np.exp(day_effect + growth * np.arange(days)))
    per_run = rng.lognormal(np.log(0.02), 1.0, runs.sum())
    cost = np.bincount(np.repeat(np.arange(days), runs), weights=per_run, minlength=days)
    return runs.astype(float), cost


def held_out(trend: bool, n: int) -> dict[str, float]:
    covered_80, covered_95, model_coverage, widening = [], [], [], []
    beats, agrees = [], []
    for replicate in range(REPLICATES):
        rng = np.random.default_rng([17, int(trend), n, replicate])
        for series in traffic(rng, n + HORIZON, trend):
            history, future = series[:n], series[n:]
            result = forecast_series(history, HORIZON)
            covered_80.append(np.mean((future >= result.lower_80) & (future <= result.upper_80)))
            covered_95.append(np.mean((future >= result.lower_95) & (future <= result.upper_95)))
            model_better = (
                np.abs(result.yhat - future).mean() < np.abs(seasonal_naive(history, HORIZON) - future).mean()
            )
            beats.append(model_better)
            if result.backtest_folds:
                model_coverage.append(result.backtest_coverage_80)
                widening.append(result.widening_80)
                agrees.append((result.backtest_mase < result.backtest_mase_snaive) == model_better)
    return {
        "cover_80": float(np.mean(covered_80)), "se_80": float(np.std(covered_80) / np.sqrt(len(covered_80))),
        "cover_95": float(np.mean(covered_95)), "se_95": float(np.std(covered_95) / np.sqrt(len(covered_95))),
        "model_alone_80": float(np.mean(model_coverage)) if model_coverage else float("nan"),
        "widening_80": float(np.mean(widening)) if widening else 1.0,
        "beats_seasonal_naive": float(np.mean(beats)),
        "backtest_agrees": float(np.mean(agrees)) if agrees else float("nan"),
    }  # fmt: skip


@pytest.mark.parametrize("trend", [False, True], ids=["no-trend", "trend"])
def test_forecast_intervals_cover_their_share_out_of_sample(trend):
    """The goal of issue 17: 80% intervals cover 75-85% out of sample, with and without a trend,
    at every history length; 95% intervals 90-98%."""
    results = {n: held_out(trend, n) for n in LENGTHS}
    print(
        f"\nforecasts, {'with' if trend else 'without'} trend, {2 * REPLICATES} series per length, 14 days ahead:"
    )
    for n, r in results.items():
        print(f"  {n} days: 80% covers {r['cover_80']:.3f} (se {r['se_80']:.3f}), 95% covers {r['cover_95']:.3f} "
              f"(se {r['se_95']:.3f}); backtest: the model's own 80% covered {r['model_alone_80']:.3f}, "
              f"widened x{r['widening_80']:.2f} on average; beats seasonal-naive {r['beats_seasonal_naive']:.2f}, "
              f"backtest verdict right {r['backtest_agrees']:.2f}")  # fmt: skip
    for n, r in results.items():
        assert 0.75 <= r["cover_80"] <= 0.85, (n, r)
        assert 0.90 <= r["cover_95"] <= 0.98, (n, r)
    # with two months the model beats the seasonal-naive forecast, and the backtest mostly says which
    assert results[60]["beats_seasonal_naive"] >= 0.7 and results[60]["backtest_agrees"] >= 0.65


def test_short_histories_do_not_claim_more_than_they_know():
    """A new agent's first two weeks (no weekly model yet): the 80% intervals cover at least 75%.
    100 agents, 200 series per length (standard error ~0.015)."""
    covered = {}
    for n in (5, 7, 10, 13):
        cells = []
        for replicate in range(100):
            rng = np.random.default_rng([18, n, replicate])
            for series in traffic(rng, n + HORIZON, replicate % 2 == 1):  # half of them with a trend
                result = forecast_series(series[:n], HORIZON)
                future = series[n:]
                cells.append(np.mean((future >= result.lower_80) & (future <= result.upper_80)))
        covered[n] = float(np.mean(cells))
    print(
        "\nshort histories, 80% intervals cover: "
        + ", ".join(f"{n} days {c:.3f}" for n, c in covered.items())
    )
    assert all(c >= 0.75 for c in covered.values()), covered
