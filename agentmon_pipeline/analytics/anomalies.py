"""Anomaly scores for a series (pure numpy/statsmodels; no warehouse).

Methods, each returning the expected value and a score per point (|score| >= threshold is an
anomaly):
- `zscore` (the seed document's): (x - mean) / sd of the previous `window` points.
- `mad`: the robust version, 0.6745 (x - median) / MAD of the previous `window` points
  (Iglewicz & Hoaglin's modified z-score).
- `seasonal`: STL (Cleveland et al. 1990), or MSTL for both a daily and a weekly cycle (Bandara
  et al. 2021) when the series covers three weeks (with two, the weekly component absorbs the
  noise and every residual is near zero); the expected value is trend + seasonal
  components and the score is the robust z-score of the residual (residual / 1.4826 MAD of all
  residuals). STL's own robust fitting is not used: it pulls the fit so close to most points that
  the residuals' MAD shrinks and ordinary points score high (measured: 14 false alarms per 30
  days against 0.1). Without enough history for one cycle it falls back to `mad`, and says so.

Rates (error_rate, success_rate, retry_rate) are judged with their sample size: the score is the
exact binomial tail probability of k events in n runs at the expected rate, expressed as a normal
quantile. One error in two runs against a 5% expectation is p = 0.098, a score of 1.3: not an
anomaly; 30 in 60 is.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

# The default threshold per method. `zscore` keeps the seed document's 2.0. The others aim at
# about one false alarm per 30 days of hourly points on a clean series: 3.5 is Iglewicz and
# Hoaglin's rule for the modified z-score; the seasonal score, measured on 20 simulated months of
# hourly points with daily and weekly cycles, gives 7.5 false alarms a month at 3.0, 2.3 at 3.5
# and 0.75 at 4.0.
DEFAULT_THRESHOLDS = {"zscore": 2.0, "mad": 3.5, "seasonal": 4.0}
# periods of the daily and weekly cycles, per granularity
PERIODS = {"15m": (96, 672), "1h": (24, 168), "1d": (7,)}
SCORE_CAP = 10.0


@dataclass
class Scores:
    expected: np.ndarray
    score: np.ndarray
    method: str
    note: str = ""


def _rolling(values: np.ndarray, window: int, robust: bool) -> Scores:
    n = values.size
    expected = np.full(n, np.nan)
    score = np.zeros(n)
    for i in range(window, n):  # a loop over the buckets of one series (hundreds), not over records
        past = values[i - window : i]
        past = past[~np.isnan(past)]
        if past.size < max(3, window // 2) or np.isnan(values[i]):
            continue
        if robust:
            centre = float(np.median(past))
            spread = float(np.median(np.abs(past - centre))) / 0.6745
        else:
            centre, spread = float(past.mean()), float(past.std(ddof=1))
        expected[i] = centre
        score[i] = _ratio(values[i] - centre, spread)
    return Scores(expected, score, "mad" if robust else "zscore")


def _ratio(diff: float, spread: float) -> float:
    if spread > 0:
        return float(np.clip(diff / spread, -SCORE_CAP, SCORE_CAP))
    return 0.0 if abs(diff) < 1e-12 else math.copysign(SCORE_CAP, diff)


def zscore_scores(values: np.ndarray, window: int = 10) -> Scores:
    return _rolling(values, window, robust=False)


def mad_scores(values: np.ndarray, window: int = 10) -> Scores:
    return _rolling(values, window, robust=True)


def _filled(values: np.ndarray) -> np.ndarray:
    """STL needs every point: gaps are interpolated (they are scored 0 afterwards)."""
    if not np.isnan(values).any():
        return values
    idx = np.arange(values.size)
    ok = ~np.isnan(values)
    if not ok.any():
        return np.zeros_like(values)
    return np.interp(idx, idx[ok], values[ok])


def _decompose(series: np.ndarray, usable: tuple[int, ...]) -> np.ndarray:
    """Trend + seasonal components of a complete series (the expected values)."""
    from statsmodels.tsa.seasonal import MSTL, STL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(usable) > 1:
            fit = MSTL(series, periods=usable).fit()
            seasonal = np.asarray(fit.seasonal).reshape(series.size, -1).sum(axis=1)
        else:
            fit = STL(series, period=usable[0]).fit()
            seasonal = np.asarray(fit.seasonal)
    return np.asarray(fit.trend) + seasonal


def _robust_z(resid: np.ndarray, reference: np.ndarray) -> np.ndarray:
    centre = float(np.median(reference))
    spread = 1.4826 * float(np.median(np.abs(reference - centre)))
    return np.array([_ratio(r - centre, spread) for r in resid])


def _imputed(series: np.ndarray, extreme: np.ndarray, period: int, fallback: np.ndarray) -> np.ndarray:
    """Extreme points replaced by the mean of the same point one cycle before and after (those that
    are not extreme themselves): unlike the first fit's expected value, this holds nothing of the
    spike, which the first fit spread over the seasonal component."""
    out = series.copy()
    for i in np.flatnonzero(extreme):  # the few extreme points, not the series
        neighbours = [series[j] for j in (i - period, i + period) if 0 <= j < series.size and not extreme[j]]
        out[i] = float(np.mean(neighbours)) if neighbours else fallback[i]
    return out


def seasonal_scores(values: np.ndarray, periods: tuple[int, ...], window: int = 10) -> Scores:
    """Up to four fits: the points that score beyond the default threshold are replaced
    (`_imputed`) and the series is fitted again, so that a spike does not leak into the seasonal
    component (which made the same hour a week earlier look abnormally low)."""
    usable = tuple(p for p in periods if values.size >= 3 * p)  # two cycles let MSTL absorb the noise
    if not usable:
        fallback = mad_scores(values, window)
        fallback.note = (
            f"{values.size} points: too short for a seasonal cycle of {periods[0]}; robust rolling score"
        )
        return fallback
    series = _filled(values)
    expected = _decompose(series, usable)
    extreme = np.zeros(series.size, dtype=bool)
    for _ in range(3):  # a long spike is uncovered in steps: the first fit's trend hides part of it
        resid = series - expected
        found = (
            np.abs(_robust_z(resid, resid[~extreme] if (~extreme).sum() > 10 else resid))
            >= DEFAULT_THRESHOLDS["seasonal"]
        )
        if not (found & ~extreme).any():
            break
        extreme |= found
        expected = _decompose(_imputed(series, extreme, usable[0], expected), usable)
    resid = series - expected
    score = _robust_z(resid, resid[~extreme] if (~extreme).sum() > 10 else resid)
    score[np.isnan(values)] = 0.0
    note = "MSTL, daily and weekly cycles" if len(usable) > 1 else f"STL, cycle of {usable[0]} points"
    return Scores(expected, score, "seasonal", note)


def rate_scores(k: np.ndarray, n: np.ndarray, expected_rate: np.ndarray) -> np.ndarray:
    """The exact binomial surprise of k events in n runs at the expected rate, as a normal quantile
    (positive: more events than expected). Buckets without runs score 0."""
    p0 = np.clip(np.nan_to_num(expected_rate, nan=0.5), 1e-4, 1 - 1e-4)
    upper = stats.binom.sf(k - 1, n, p0)  # P(X >= k)
    lower = stats.binom.cdf(k, n, p0)  # P(X <= k)
    with np.errstate(divide="ignore"):
        score = np.where(k >= n * p0, stats.norm.isf(np.clip(upper, 1e-300, 0.5)),
                         -stats.norm.isf(np.clip(lower, 1e-300, 0.5)))  # fmt: skip
    return np.where(n > 0, np.clip(score, -SCORE_CAP, SCORE_CAP), 0.0)


def non_negative(values: np.ndarray, scores: Scores) -> None:
    """A series that is never negative (counts, costs, latencies) has no expectation below zero:
    where the fit's trend and season dip under it, the expected value is 0 and the score shrinks
    with the residual (same spread). Otherwise an hour with nothing (0) scores as 'up' against a
    negative expectation."""
    below = np.isfinite(scores.expected) & (scores.expected < 0)
    if not below.any():
        return
    residual = values - scores.expected
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(below & (residual != 0), values / residual, 1.0)
    scores.score = np.where(below, scores.score * np.nan_to_num(shrink, nan=0.0), scores.score)
    scores.expected = np.where(below, 0.0, scores.expected)


def score_series(
    values: np.ndarray, method: str, window: int, periods: tuple[int, ...],
    k: np.ndarray | None = None, n: np.ndarray | None = None,
) -> Scores:  # fmt: skip
    """Scores for one series; with k and n the series is a rate judged by its sample size."""
    if method == "zscore":
        result = zscore_scores(values, window)
    elif method == "mad":
        result = mad_scores(values, window)
    elif method == "seasonal":
        result = seasonal_scores(values, periods, window)
    else:
        raise ValueError(f"method {method!r}: expected zscore, mad or seasonal")
    if k is not None and n is not None:
        expected = np.clip(result.expected, 0, 1)
        # no expectation (too little history before the point) is no judgement, not a guess of 0.5
        result.score = np.where(np.isfinite(expected), rate_scores(k, n, expected), 0.0)
        result.expected = expected
    return result
