"""Daily forecasts with prediction intervals and an honest backtest (pure numpy/statsmodels).

Model, by the history available (n days):
- n >= 16 (two weeks and two days): Holt-Winters with a damped additive trend and an additive
  weekly season (statsmodels' ExponentialSmoothing);
- 7 <= n < 16: Holt's damped trend, no season ("history shorter than 16 days: no weekly season");
- 3 <= n < 7: simple exponential smoothing ("history shorter than a week: level only");
- n < 3: the last value, no interval ("fewer than 3 days of history").
Prediction intervals (80% and 95%) are quantiles of 2000 simulated paths with additive errors.
(statsmodels' ETSModel gives analytical intervals, but on simulated weekly series they covered
only 63% and 85% of held-out points, against 80% and 93% for the simulation, at twice the cost.)
The trend is damped: a two-week forecast does not extrapolate a short rise forever, and on a
series with a strong trend the intervals cover less than their nominal share.
Values that cannot be negative (cost, tokens, runs) have their forecasts and bounds clipped at 0.

Before fitting, one-off spikes are replaced (clean_outliers), and the model records it.

Every forecast carries a rolling-origin backtest (Hyndman & Athanasopoulos, FPP3 §5.10): at each
of the last three origins a week apart, the model is refitted on the history before it and
forecasts the next `min(horizon, 7)` days. The errors are reported as MASE (Hyndman & Koehler
2006): mean absolute error divided by the in-sample MAE of the one-season naive forecast, for the
model and for the seasonal-naive forecast itself, so a reader sees whether the model beats it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

SEASON = 7
MIN_SEASONAL, MIN_TREND, MIN_LEVEL = 2 * SEASON + 2, SEASON, 3


@dataclass
class Forecast:
    model: str
    reason: str
    yhat: np.ndarray
    lower_80: np.ndarray
    upper_80: np.ndarray
    lower_95: np.ndarray
    upper_95: np.ndarray
    backtest_mase: float = math.nan
    backtest_mase_snaive: float = math.nan
    backtest_folds: int = 0
    fitted: object = field(default=None, repr=False)  # the statsmodels results, for simulation


def _model_for(n: int) -> tuple[str, str, dict]:
    if n >= MIN_SEASONAL:
        return (
            "holt_winters_damped_weekly",
            "",
            {"trend": "add", "damped_trend": True, "seasonal": "add", "seasonal_periods": SEASON},
        )
    if n >= MIN_TREND:
        return (
            "holt_damped",
            f"history shorter than {MIN_SEASONAL} days: no weekly season",
            {"trend": "add", "damped_trend": True},
        )
    if n >= MIN_LEVEL:
        return "simple_exponential_smoothing", "history shorter than a week: level only", {}
    return "last_value", f"fewer than {MIN_LEVEL} days of history", {}  # fmt: skip


def _fit(values: np.ndarray, kwargs: dict):
    import pandas as pd
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(pd.Series(values.astype(float)), **kwargs).fit()
    if not np.all(np.isfinite(np.asarray(fitted.fittedvalues))):
        raise ValueError("the fit diverged")
    return fitted


def _fit_with_fallback(values: np.ndarray) -> tuple[str, str, object | None]:
    model, reason, kwargs = _model_for(values.size)
    if model == "last_value":
        return model, reason, None
    if np.ptp(values) == 0:
        return "last_value", "the history is constant", None
    try:
        return model, reason, _fit(values, kwargs)
    except Exception as exc:  # noqa: BLE001 - a degenerate series (constant, all zeros)
        try:
            return "simple_exponential_smoothing", f"the {model} fit failed ({exc})", _fit(values, {})
        except Exception:  # noqa: BLE001
            return "last_value", f"the {model} fit failed ({exc})", None


def _point(values: np.ndarray, horizon: int) -> np.ndarray:
    _, _, fitted = _fit_with_fallback(values)
    if fitted is None:
        return np.full(horizon, float(values[-1]) if values.size else 0.0)
    return np.asarray(fitted.forecast(horizon))


def _point_and_intervals(values: np.ndarray, horizon: int, seed: int = 0) -> Forecast:
    """Prediction intervals from 2000 simulated future paths with additive errors drawn from the
    fitted model's residual variance (statsmodels' HoltWintersResults.simulate)."""
    model, reason, fitted = _fit_with_fallback(values)
    if fitted is None:
        flat = np.full(horizon, float(values[-1]) if values.size else 0.0)
        nan = np.full(horizon, np.nan)
        return Forecast(model, reason, flat, nan, nan, nan, nan)
    paths = _simulate(fitted, horizon, 2000, seed)
    lo95, lo80, hi80, hi95 = np.percentile(paths, [2.5, 10, 90, 97.5], axis=1)
    return Forecast(
        model, reason, np.asarray(fitted.forecast(horizon)), lo80, hi80, lo95, hi95, fitted=fitted
    )


def seasonal_naive(values: np.ndarray, horizon: int) -> np.ndarray:
    season = values[-SEASON:] if values.size >= SEASON else values[-1:]
    return np.resize(season, horizon)


def _mase_scale(values: np.ndarray) -> float:
    lag = SEASON if values.size > SEASON else 1
    diffs = np.abs(values[lag:] - values[:-lag])
    scale = float(diffs.mean()) if diffs.size else math.nan
    return scale if scale > 0 else math.nan


def backtest(values: np.ndarray, horizon: int, folds: int = 3) -> tuple[float, float, int]:
    """(model MASE, seasonal-naive MASE, folds used) over rolling origins a week apart."""
    h = min(horizon, SEASON)
    model_errors, naive_errors, used = [], [], 0
    # the model judged is the one the full history gets: folds with less history would judge a
    # simpler one (no weekly season below MIN_SEASONAL days), so they are left out
    full_model = _model_for(values.size)[0]
    for k in range(folds, 0, -1):
        origin = values.size - h - (k - 1) * SEASON
        if origin < MIN_LEVEL or _model_for(origin)[0] != full_model:
            continue
        train, test = values[:origin], values[origin : origin + h]
        forecast = _point(train, test.size)
        model_errors.append(np.abs(forecast - test))
        naive_errors.append(np.abs(seasonal_naive(train, test.size) - test))
        used += 1
    scale = _mase_scale(values)
    if not used or math.isnan(scale):
        return math.nan, math.nan, used
    return (
        float(np.concatenate(model_errors).mean() / scale),
        float(np.concatenate(naive_errors).mean() / scale),
        used,
    )


def clean_outliers(values: np.ndarray, k: float = 5.0) -> tuple[np.ndarray, int]:
    """One-off spikes replaced by the centred 7-day median plus the weekday's typical deviation from
    it (in the spirit of Hyndman's tsclean): a day more than k robust standard deviations off. A ten-fold cost spike on one day would otherwise
    drag the level and trend of every later forecast. Returns (cleaned values, days replaced)."""
    if values.size < SEASON:
        return values, 0
    half = SEASON // 2
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, SEASON)
    median = np.median(windows, axis=1)
    resid = values - median
    # the weekly cycle is not an outlier: take out each weekday's typical residual first
    weekday = np.arange(values.size) % SEASON
    profile = np.array([np.median(resid[weekday == d]) for d in range(SEASON)])
    adjusted = resid - profile[weekday]
    spread = 1.4826 * float(np.median(np.abs(adjusted - np.median(adjusted))))
    if spread == 0:
        return values, 0
    outliers = np.abs(adjusted) > k * spread
    return np.where(outliers, median + profile[weekday], values), int(outliers.sum())


def forecast_series(values: np.ndarray, horizon: int = 14, non_negative: bool = True) -> Forecast:
    values, cleaned = clean_outliers(np.nan_to_num(np.asarray(values, dtype=float)))
    result = _point_and_intervals(values, horizon)
    if cleaned:
        note = f"{cleaned} outlier day(s) replaced by the 7-day median before fitting"
        result.reason = f"{result.reason}; {note}" if result.reason else note
    result.backtest_mase, result.backtest_mase_snaive, result.backtest_folds = backtest(values, horizon)
    if non_negative:
        for name in ("yhat", "lower_80", "upper_80", "lower_95", "upper_95"):
            setattr(result, name, np.clip(getattr(result, name), 0, None))
    return result


def simulate_sums(
    result: Forecast, values: np.ndarray, days: int, repetitions: int = 2000, seed: int = 0
) -> np.ndarray:
    """Simulated totals of the next `days` values (for a budget's month-end spend)."""
    if days <= 0:
        return np.zeros(1)
    if result.fitted is None:
        return np.full(1, float(values[-1]) * days if values.size else 0.0)
    return np.clip(_simulate(result.fitted, days, repetitions, seed), 0, None).sum(axis=0)


def _simulate(fitted, horizon: int, repetitions: int, seed: int) -> np.ndarray:
    """horizon x repetitions simulated future values."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        paths = fitted.simulate(horizon, repetitions=repetitions, error="add", anchor="end",
                                rng=np.random.default_rng(seed))  # fmt: skip
    return np.asarray(paths).reshape(horizon, -1)
