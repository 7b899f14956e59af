"""Paired statistics for "is the candidate worse than the baseline, and by how much?".

The unit is the case: both versions answer the same cases, so every comparison is paired by case,
and with repeats > 1 a case's repeats are averaged first (they are not independent observations
of the suite; counting them as such would overstate the evidence).

- Pass/fail, one run per case: McNemar's exact test (a two-sided binomial test on the discordant
  pairs; McNemar 1947, the exact form as in Fagerland, Lydersen & Laake 2013).
- Pass rates with repeats, and continuous scores: Wilcoxon's signed-rank test on the per-case
  differences (zeros dropped, Wilcoxon 1945), and a paired bootstrap (cases resampled) 95% CI
  of the mean difference.
- Latency: the case is the unit (its repeats give its median): Wilcoxon on the per-case log ratios
  of the two versions, and a paired bootstrap 95% CI (cases resampled) of the ratio of the p95s of
  the per-case medians; a verdict needs the median log ratio to point the way the p95 moved.
- Tokens and cost: Wilcoxon on the per-case differences, bootstrap CI of the ratio of the means.
- Holm–Bonferroni over the metrics of one comparison (Holm 1979).

Verdicts, with `worse` the effect in the bad direction and `min` the smallest drop worth an alarm:
  regressed    significant after Holm, and worse by at least `min`
  improved     significant after Holm, and better by at least `min` (the same bar as a regression)
  unchanged    not flagged, and the 95% CI excludes a drop of `min`
  inconclusive not flagged, but the CI still admits a drop of `min`
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

N_BOOT = 2000


def mcnemar_exact(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired booleans."""
    b = int(np.sum(baseline & ~candidate))
    c = int(np.sum(~baseline & candidate))
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(b, b + c, 0.5).pvalue)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1 when every difference is zero."""
    nonzero = differences[differences != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.wilcoxon(nonzero, zero_method="wilcox").pvalue)


def mann_whitney_p(baseline: np.ndarray, candidate: np.ndarray) -> float:
    if baseline.size == 0 or candidate.size == 0:
        return 1.0
    if np.all(baseline == baseline[0]) and np.all(candidate == baseline[0]):
        return 1.0
    return float(stats.mannwhitneyu(candidate, baseline, alternative="two-sided").pvalue)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_mean_ci(differences: np.ndarray, seed: int = 0, n_boot: int = N_BOOT) -> tuple[float, float]:
    """Percentile 95% CI of the mean of per-case differences, cases resampled."""
    n = differences.size
    if n == 0:
        return math.nan, math.nan
    idx = _rng(seed).integers(0, n, size=(n_boot, n))
    means = differences[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _stat_ratio_ci(
    baseline: np.ndarray, candidate: np.ndarray, statistic, seed: int, n_boot: int
) -> tuple[float, float]:
    """Percentile 95% CI of statistic(candidate) / statistic(baseline); rows are cases (paired),
    columns their repeats (NaN where missing)."""
    n = baseline.shape[0]
    if n == 0:
        return math.nan, math.nan
    idx = _rng(seed).integers(0, n, size=(n_boot, n))
    base = statistic(baseline[idx].reshape(n_boot, -1))
    cand = statistic(candidate[idx].reshape(n_boot, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cand / base
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def p95(values: np.ndarray) -> np.ndarray:
    return np.nanpercentile(values, 95, axis=-1)


def mean(values: np.ndarray) -> np.ndarray:
    return np.nanmean(values, axis=-1)


def p95_ratio_ci(
    baseline: np.ndarray, candidate: np.ndarray, seed: int = 0, n_boot: int = N_BOOT
) -> tuple[float, float]:
    return _stat_ratio_ci(baseline, candidate, p95, seed, n_boot)


def mean_ratio_ci(
    baseline: np.ndarray, candidate: np.ndarray, seed: int = 0, n_boot: int = N_BOOT
) -> tuple[float, float]:
    return _stat_ratio_ci(baseline, candidate, mean, seed, n_boot)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def verdict(
    effect: float, ci_low: float, ci_high: float, p_adjusted: float, alpha: float, min_effect: float,
    higher_is_better: bool,
) -> str:  # fmt: skip
    """See the module docstring. `effect` is candidate minus baseline (or ratio minus 1)."""
    if any(math.isnan(x) for x in (effect, p_adjusted)):
        return "inconclusive"
    worse = -effect if higher_is_better else effect
    if p_adjusted < alpha and worse >= min_effect:
        return "regressed"
    if p_adjusted < alpha and -worse >= min_effect:  # the same minimum as a regression
        return "improved"
    worst_plausible = -ci_low if higher_is_better else ci_high
    if not math.isnan(worst_plausible) and worst_plausible < min_effect:
        return "unchanged"
    return "inconclusive"
