"""Daily forecasts whose prediction intervals cover what they claim, and an honest backtest.

Model, by the history available (n days), an additive exponential-smoothing state space model
(Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., "FPP3", ch. 8):
- n >= 16 (two weeks and two days): Holt-Winters with a damped trend and a weekly season, ETS(A,Ad,A);
- 7 <= n < 16: Holt's damped trend, no season ("history shorter than 16 days: no weekly season");
- 3 <= n < 7: simple exponential smoothing ("history shorter than a week: level only");
- n < 3: the last value, no interval ("fewer than 3 days of history").
Values that cannot be negative (cost, tokens, runs) are modelled as log(y + c), c a tenth of the
history's mean (FPP3 §5.6, §13.3): in real traffic the weekly cycle and a growth trend are
multiplicative (weekends are a share of weekdays, a busier month has wider swings) and daily sums of
lognormal costs are skewed. The point forecast `yhat` is the back-transformed one, the median
(FPP3 §5.6); the bounds are the back-transformed quantiles, clipped at 0.

The smoothing parameters are the least-squares (Gaussian maximum-likelihood) ones on a grid of the
usual region (0 < beta < alpha < 1, gamma < 1 - alpha, damping 0.8-0.98 as in R's `ets`; FPP3
§8.6); the initial states are a least-squares line and weekday effects on the first two weeks (a
week, three days for the simpler models; Hyndman, Koehler, Ord & Snyder 2008, *Forecasting with
Exponential Smoothing*, §2.6.1). The whole grid is filtered at once, in one pass over the days, so
the fit on every prefix of the history costs no more than the fit on all of it: that is what makes
a backtest with a refit at every origin cheap (a few milliseconds for a series).

Prediction intervals. On the model's scale the h-step error has variance
sigma^2 (1 + sum_{j<h} c_j^2), c_j = alpha + beta (phi + ... + phi^j) + gamma [7 divides j]
(Hyndman et al. 2008 ch. 6; FPP3 §8.7, Table 8.8), with sigma^2 the squared one-step errors
summed over n - p degrees of freedom (p: smoothing parameters and initial states, as R's `ets`
counts them). The quantiles are normal for the weekly model, as in R's `ets`, and Student t on
those degrees of freedom for the short-history models, whose sigma rests on 3-15 days (with
normal quantiles a week of history gave 80% intervals that covered about two days in three; t
ones over-covered the weekly model at 16 days, where normal ones are right). That alone is not enough on real traffic (the parameters are
estimated, the trend is damped, day effects are autocorrelated and costs heavy-tailed), so each
interval is then rescaled by what the backtest saw (empirical calibration: Williams & Goodman
1971; Lee & Scholtes 2014, "Empirical prediction intervals revisited", IJF 30(2)): by the factor
that makes the model's own 80% (95%) intervals cover 80% (95%) of the backtest's held-out days,
every horizon weighted alike. A factor above 1 is used whole; below 1 it narrows by a tenth at
most (NARROWEST): a factor estimated from a few dozen overlapping folds is noisy, and noise in the
width lowers coverage, so a backtest that happened to go well must not shrink the intervals much.
`backtest_coverage_80`/`_95` report the model's own coverage in the backtest, before rescaling.

Backtest (FPP3 §5.10, time-series cross-validation): rolling origins one day apart, the last
MAX_FOLDS whose history gets the same model (a shorter one would judge a simpler model); at each
the model is refitted on the days before the origin and forecasts the next `min(horizon, days
left)` days. Accuracy is MASE (Hyndman & Koehler 2006; FPP3 §5.8): absolute errors over the mean
absolute error of the one-week seasonal-naive forecast on *that fold's training days* (the held-out
days never enter the scale), for the model and for the seasonal-naive forecast itself.

Before fitting, one-off spikes are replaced (clean_outliers), and the model records it.

Measured on simulated traffic in tests/analytics/test_forecast_coverage.py (Poisson daily runs,
weekends lower, AR(1) day effects, lognormal per-run costs summed per day, with and without a
trend, at 16, 30 and 60 days of history); the figures are in docs/analytics.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from scipy import stats

SEASON = 7
MIN_SEASONAL, MIN_TREND, MIN_LEVEL = 2 * SEASON + 2, SEASON, 3
MAX_FOLDS = 28  # four weeks of daily origins: enough to calibrate, and the fit of all is one pass
NARROWEST = 0.9  # the backtest may narrow the model's intervals by a tenth at most (see _backtest)
LOG_OFFSET = 0.1  # c in log(y + c), as a share of the history's mean
Z = {0.80: 1.2815515655446004, 0.95: 1.959963984540054}  # two-sided standard normal quantiles


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
    backtest_coverage_80: float = math.nan  # the model's own 80% intervals in the backtest, before widening
    backtest_coverage_95: float = math.nan
    widening_80: float = 1.0  # what the 80% interval was widened by (backtest calibration)
    widening_95: float = 1.0
    fitted: _Fit | None = field(default=None, repr=False)  # for simulated sums (budgets)


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    model: str
    min_days: int
    seasonal: bool
    trend: bool
    parameters: int  # smoothing parameters and initial states, for sigma^2's degrees of freedom


SEASONAL = _Kind("holt_winters_damped_weekly", MIN_SEASONAL, True, True, 4 + 2 + SEASON - 1)
TREND = _Kind("holt_damped", MIN_TREND, False, True, 3 + 2)
LEVEL = _Kind("simple_exponential_smoothing", MIN_LEVEL, False, False, 1 + 1)


def _kind_for(n: int) -> tuple[_Kind | None, str]:
    if n >= MIN_SEASONAL:
        return SEASONAL, ""
    if n >= MIN_TREND:
        return TREND, f"history shorter than {MIN_SEASONAL} days: no weekly season"
    if n >= MIN_LEVEL:
        return LEVEL, "history shorter than a week: level only"
    return None, f"fewer than {MIN_LEVEL} days of history"


@dataclass(frozen=True)
class _Grid:
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    phi: np.ndarray


def _grid(kind: _Kind) -> _Grid:
    """The candidate smoothing parameters: alpha in (0, 1), beta < alpha, gamma < 1 - alpha,
    phi in [0.8, 0.98] (R's `ets` bounds for the damping)."""
    if not kind.trend:
        alpha = np.linspace(0.01, 0.99, 99)
        zero = np.zeros_like(alpha)
        return _Grid(alpha, zero, zero, zero)
    alpha = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.98])
    beta_share = np.array([0.001, 0.05, 0.15, 0.3, 0.6])
    gamma_share = np.array([0.001, 0.05, 0.15, 0.3, 0.6]) if kind.seasonal else np.zeros(1)
    phi = np.array([0.8, 0.9, 0.95, 0.98])
    a, bs, gs, p = (x.ravel() for x in np.meshgrid(alpha, beta_share, gamma_share, phi, indexing="ij"))
    return _Grid(a, a * bs, (1 - a) * gs, p)


def _initial_states(z: np.ndarray, kind: _Kind) -> tuple[float, float, np.ndarray]:
    """(level, slope, weekly season by position mod 7) from a least-squares fit of the first two
    weeks (a week without season, three days level only)."""
    season = np.zeros(SEASON)
    if not kind.trend:
        return float(z[:MIN_LEVEL].mean()), 0.0, season
    m = 2 * SEASON if kind.seasonal else SEASON
    t = np.arange(m, dtype=float)
    columns = [np.ones(m), t]
    if kind.seasonal:  # effects coding: the seven weekday effects sum to zero
        position = np.arange(m) % SEASON
        columns += [(position == d).astype(float) - (position == SEASON - 1) for d in range(SEASON - 1)]
    coef = np.linalg.lstsq(np.column_stack(columns), z[:m], rcond=None)[0]
    if kind.seasonal:
        season = np.append(coef[2:], -coef[2:].sum())
    return float(coef[0]), float(coef[1]), season


@dataclass
class _Fit:
    """One candidate's fit at one origin: what forecasts and simulations need."""

    kind: _Kind
    alpha: float
    beta: float
    gamma: float
    phi: float
    sigma: float
    origin: int  # days of history (the next day is origin's position mod 7 in the season)
    level: float
    slope: float
    season: np.ndarray
    offset: float | None  # c of log(y + c); None: the raw scale
    df: int = 1  # sigma's degrees of freedom: days less parameters
    widening: float = 1.0  # of the 80% interval, for simulations

    def z(self, level: float) -> float:
        """The interval's quantile: Student t on sigma's degrees of freedom for the short-history
        models (sigma from 3-15 days), normal for the weekly one (see the module's docstring)."""
        return Z[level] if self.kind.seasonal else _t_quantile(level, self.df)

    def mean_and_sd(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Point forecasts and their standard deviations on the model's scale, 1..horizon ahead."""
        h = np.arange(1, horizon + 1)
        damped_sum = np.cumsum(self.phi ** h.astype(float))  # phi + ... + phi^h
        mean = self.level + damped_sum * self.slope + self.season[(self.origin + h - 1) % SEASON]
        c = self.alpha + self.beta * damped_sum + self.gamma * (h % SEASON == 0)  # c_j, j = 1..horizon
        variance = self.sigma**2 * (1 + np.concatenate([[0.0], np.cumsum(c[:-1] ** 2)]))
        return mean, np.sqrt(variance)

    def back(self, z: np.ndarray) -> np.ndarray:
        return z if self.offset is None else np.exp(z) - self.offset

    def simulate(self, horizon: int, repetitions: int, seed: int) -> np.ndarray:
        """horizon x repetitions simulated future values (original scale), with Gaussian errors as
        wide as the issued 80% interval (its quantile and its widening)."""
        rng = np.random.default_rng(seed)
        scale = self.sigma * self.widening * self.z(0.80) / Z[0.80]
        errors = rng.normal(0.0, scale, (horizon, repetitions))
        level = np.full(repetitions, self.level)
        slope = np.full(repetitions, self.slope)
        season = np.tile(self.season, (repetitions, 1))
        paths = np.empty((horizon, repetitions))
        for h in range(horizon):
            position = (self.origin + h) % SEASON
            damped = self.phi * slope
            paths[h] = level + damped + season[:, position] + errors[h]
            level = level + damped + self.alpha * errors[h]
            slope = damped + self.beta * errors[h]
            season[:, position] += self.gamma * errors[h]
        return self.back(paths)


@cache
def _t_quantile(level: float, df: int) -> float:
    return float(stats.t.ppf(0.5 + level / 2, df))


def _fits(z: np.ndarray, kind: _Kind, offset: float | None, origins: list[int]) -> dict[int, _Fit]:
    """The least-squares fit on the first `origin` days, for each origin: every candidate of the
    grid filtered at once through the error-correction recursions of the model (Hyndman et al.
    2008, Table 2.3), a loop over days, not over candidates; at each origin the candidate with
    the smallest sum of squared one-step errors so far, with its states there."""
    grid = _grid(kind)
    level0, slope0, season0 = _initial_states(z, kind)
    slope = np.full(grid.alpha.size, slope0)
    level = level0 - grid.phi * slope  # so that the first one-step forecast is the fitted line's
    season = np.tile(season0, (grid.alpha.size, 1))
    sse = np.zeros(grid.alpha.size)
    wanted, fits = set(origins), {}
    for t in range(z.size + 1):
        if t in wanted:
            best = int(np.argmin(sse))
            df = max(t - kind.parameters, 1)  # sigma^2 over days less parameters, as R's ets
            fits[t] = _Fit(kind, float(grid.alpha[best]), float(grid.beta[best]), float(grid.gamma[best]),
                           float(grid.phi[best]), max(math.sqrt(sse[best] / df), 1e-9), t, float(level[best]),
                           float(slope[best]), season[best].copy(), offset, df)  # fmt: skip
        if t == z.size:
            break
        position = t % SEASON
        damped = grid.phi * slope
        error = z[t] - (level + damped + season[:, position])
        level = level + damped + grid.alpha * error
        slope = damped + grid.beta * error
        if kind.seasonal:
            season[:, position] += grid.gamma * error
        sse += error * error
    return fits


# --- the backtest ------------------------------------------------------------------------------


def seasonal_naive(values: np.ndarray, horizon: int) -> np.ndarray:
    season = values[-SEASON:] if values.size >= SEASON else values[-1:]
    return np.resize(season, horizon)


def _mase_scale(train: np.ndarray) -> float:
    """The in-sample MAE of the one-week seasonal-naive forecast (one-day naive under two weeks),
    from the training days only."""
    lag = SEASON if train.size > SEASON else 1
    diffs = np.abs(train[lag:] - train[:-lag])
    scale = float(diffs.mean()) if diffs.size else math.nan
    return scale if scale > 0 else math.nan


@dataclass
class Backtest:
    folds: int = 0
    mase: float = math.nan
    mase_snaive: float = math.nan
    coverage_80: float = math.nan  # of the model's own intervals, before widening
    coverage_95: float = math.nan
    widening_80: float = 1.0
    widening_95: float = 1.0


def _backtest(
    values: np.ndarray, z: np.ndarray, fits: dict[int, _Fit], origins: list[int], horizon: int
) -> Backtest:
    """Rolling-origin errors of the refitted model at each origin: MASE on the original scale
    (each fold scaled by its own training days), coverage and calibration on the model's scale."""
    scaled_model, scaled_naive, ratios = [], [], {level: [] for level in Z}
    for origin in origins:  # a few dozen folds at most
        h = min(horizon, values.size - origin)
        fit = fits[origin]
        mean, sd = fit.mean_and_sd(h)
        error = np.abs(z[origin : origin + h] - mean)
        for level in Z:  # the error over the half-width of the model's own interval
            ratios[level].append(error / (fit.z(level) * sd))
        scale = _mase_scale(values[:origin])
        if math.isnan(scale):
            continue
        test = values[origin : origin + h]
        point = fit.back(mean)
        if fit.offset is not None:
            point = np.clip(point, 0, None)
        scaled_model.append(np.abs(point - test) / scale)
        scaled_naive.append(np.abs(seasonal_naive(values[:origin], h) - test) / scale)
    result = Backtest(folds=len(origins))
    if scaled_model:
        result.mase = float(np.concatenate(scaled_model).mean())
        result.mase_snaive = float(np.concatenate(scaled_naive).mean())
    if origins:
        # every horizon counts the same, as in the forecast (the folds give more short ones)
        ahead = np.concatenate([np.arange(x.size) for x in ratios[0.80]])
        weight = 1.0 / np.bincount(ahead)[ahead]
        r80, r95 = np.concatenate(ratios[0.80]), np.concatenate(ratios[0.95])
        result.coverage_80 = float(weight @ (r80 <= 1) / weight.sum())
        result.coverage_95 = float(weight @ (r95 <= 1) / weight.sum())
        result.widening_80 = max(NARROWEST, _weighted_quantile(r80, weight, 0.80))
        result.widening_95 = max(NARROWEST, _weighted_quantile(r95, weight, 0.95))
    return result


def _weighted_quantile(x: np.ndarray, weight: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cumulative = np.cumsum(weight[order])
    return float(x[order][np.searchsorted(cumulative, q * cumulative[-1])])


# --- the forecast ------------------------------------------------------------------------------


def clean_outliers(values: np.ndarray, k: float = 5.0) -> tuple[np.ndarray, int]:
    """One-off spikes replaced by the 7-day median around them plus the weekday's typical deviation
    from it (in the spirit of Hyndman's tsclean): a day more than k robust standard deviations off.
    A ten-fold cost spike on one day would otherwise drag the level and trend of every later
    forecast. Returns (cleaned values, days replaced).

    Two things keep ordinary days ordinary (issue 17; on Gaussian weekly series a day was replaced
    in 16-53% of histories, and the last day of 40% of busy simulated ones):
    - the median is of a whole week (each weekday once) also at the ends of the history: the first
      and last three days take the first and last week's (padding the ends with copies of the last
      value made a Saturday's median that Saturday, "off" by the whole weekly cycle);
    - a day's weekday deviation is the median of the *other* weeks' same weekday (leave one out):
      with two or three weeks a weekday's own median is half made of the day itself, which shrank
      the residuals, and with them the robust spread, towards zero. A weekday seen once is not
      judged (its deviation and a spike cannot be told apart)."""
    if values.size < SEASON:
        return values, 0
    windows = np.lib.stride_tricks.sliding_window_view(values, SEASON)
    centre = np.clip(np.arange(values.size) - SEASON // 2, 0, values.size - SEASON)
    median = np.median(windows, axis=1)[centre]
    resid = values - median
    weeks = -(-values.size // SEASON)
    by_week = np.pad(resid, (0, weeks * SEASON - values.size), constant_values=np.nan).reshape(weeks, SEASON)
    others = np.where(
        np.eye(weeks, dtype=bool)[:, :, None], np.nan, by_week[None, :, :]
    )  # week x other week x day
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a weekday seen once has no other week
        profile = np.nanmedian(others, axis=1).reshape(-1)[: values.size]
    adjusted = np.where(np.isnan(profile), 0.0, resid - profile)
    spread = 1.4826 * float(np.median(np.abs(adjusted - np.median(adjusted))))
    if spread == 0:
        return values, 0
    outliers = np.abs(adjusted) > k * spread
    return np.where(outliers, median + np.nan_to_num(profile), values), int(outliers.sum())


def _last_value(values: np.ndarray, horizon: int, model: str, reason: str) -> Forecast:
    flat = np.full(horizon, float(values[-1]) if values.size else 0.0)
    nan = np.full(horizon, np.nan)
    return Forecast(model, reason, flat, nan, nan, nan, nan)


def forecast_series(values: np.ndarray, horizon: int = 14, non_negative: bool = True) -> Forecast:
    values = np.nan_to_num(np.asarray(values, dtype=float))
    values, cleaned = clean_outliers(values)
    if non_negative:  # a replaced day can be below zero
        values = np.clip(values, 0, None)
    kind, reason = _kind_for(values.size)
    if kind is None:
        result = _last_value(values, horizon, "last_value", reason)
    elif np.ptp(values) == 0:
        result = _last_value(values, horizon, "last_value", "the history is constant")
    else:
        result = _smoothed(values, horizon, non_negative, kind, reason)
    if cleaned:
        note = f"{cleaned} outlier day(s) replaced by the 7-day median before fitting"
        result.reason = f"{result.reason}; {note}" if result.reason else note
    if non_negative:
        for name in ("yhat", "lower_80", "upper_80", "lower_95", "upper_95"):
            setattr(result, name, np.clip(getattr(result, name), 0, None))
    return result


def _smoothed(values: np.ndarray, horizon: int, non_negative: bool, kind: _Kind, reason: str) -> Forecast:
    offset = LOG_OFFSET * float(values.mean()) if non_negative else None
    z = values if offset is None else np.log(values + offset)
    first = max(kind.min_days, values.size - MAX_FOLDS)
    # a constant history gets the last value, not this model: its folds would judge nothing
    varied = np.maximum.accumulate(values) > np.minimum.accumulate(values)
    origins = [origin for origin in range(first, values.size) if varied[origin - 1]]
    fits = _fits(z, kind, offset, [*origins, values.size])
    test = _backtest(values, z, fits, origins, horizon)
    fit = fits[values.size]
    fit.widening = test.widening_80
    mean, sd = fit.mean_and_sd(horizon)
    if not np.all(np.isfinite(mean)):  # values beyond what a double can smooth
        return _last_value(values, horizon, "last_value", f"the {kind.model} fit failed")
    lo80, hi80 = (fit.back(mean + sign * test.widening_80 * fit.z(0.80) * sd) for sign in (-1, 1))
    lo95, hi95 = (fit.back(mean + sign * test.widening_95 * fit.z(0.95) * sd) for sign in (-1, 1))
    return Forecast(
        kind.model, reason, fit.back(mean), lo80, hi80, lo95, hi95,
        backtest_mase=test.mase, backtest_mase_snaive=test.mase_snaive, backtest_folds=test.folds,
        backtest_coverage_80=test.coverage_80, backtest_coverage_95=test.coverage_95,
        widening_80=test.widening_80, widening_95=test.widening_95, fitted=fit,
    )  # fmt: skip


def simulate_sums(
    result: Forecast, values: np.ndarray, days: int, repetitions: int = 2000, seed: int = 0
) -> np.ndarray:
    """Simulated totals of the next `days` values (for a budget's month-end spend)."""
    if days <= 0:
        return np.zeros(1)
    if result.fitted is None:
        return np.full(1, float(values[-1]) * days if values.size else 0.0)
    return np.clip(result.fitted.simulate(days, repetitions, seed), 0, None).sum(axis=0)
