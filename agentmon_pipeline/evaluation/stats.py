"""Paired statistics for "is the candidate worse than the baseline, and by how much?", and what
size of change a suite could have found.

The unit is the case: both versions answer the same cases, so every comparison is paired by case,
and with repeats > 1 a case's repeats are averaged first (they are within-case samples, not
independent observations of the suite: averaging them shrinks the case's noise, which is how a
suite buys power with repeats). When the dataset puts cases in clusters (`cluster`), the cluster
is the independent unit.

- Pass/fail, one run per case, no clusters: McNemar's test with the mid-p value (a two-sided
  binomial test on the discordant pairs, minus half the probability of the observed split;
  McNemar 1947; Fagerland, Lydersen & Laake 2013, "The McNemar test for binary matched-pairs
  data: mid-p and asymptotic are better than exact conditional", BMC Med Res Methodol 13:91). The
  exact test's discreteness costs power (a 10-point drop on 400 cases: exact 0.857, mid-p 0.873,
  the ideal paired z-test 0.875 on the same suites); the mid-p value holds its alpha (A/A
  0.0465) and recovers it (tests/evaluation/test_stats.py prints the figures).
- Pass rates with repeats, scores, and any rate or score of a clustered dataset: the paired t-test
  on the per-case differences d_i (candidate mean minus baseline mean over the case's repeats):
  t = mean(d) / SE with n - 1 degrees of freedom and SE = sd(d) / sqrt(n); with clusters the
  cluster-robust SE (Liang & Zeger 1986; Miller 2024, "Adding Error Bars to Evals", arXiv:2411.00640,
  its clustered standard errors):
      SE^2 = G / (G - 1) * sum_c (sum_{i in c} (d_i - mean(d)))^2 / n^2
  over the G clusters, with G - 1 degrees of freedom (as Cameron & Miller 2015, "A Practitioner's
  Guide to Cluster-Robust Inference", advise for few clusters). Its 95% CI is
  mean(d) -/+ t_{0.975} SE. When every unit moved by the same amount (SE 0), the p-value is the
  sign-flip test's exact 2 / 2^units. Cases that share a cluster can share the candidate's change
  (better on one topic, worse on another): the per-case SE then understates the noise of the
  suite's mean (A/A false verdicts 0.118 with one run per case and 0.190 with two in the
  simulations; clustered, 0.040 and 0.049).
- Pass/fail, one run per case: the effect's 95% CI is a paired bootstrap (cases resampled).
- Latency: the case is the unit (its repeats give its median): Wilcoxon on the per-case log ratios
  of the two versions, and a paired bootstrap 95% CI (cases resampled) of the ratio of the p95s of
  the per-case medians; a verdict needs the median log ratio to point the way the p95 moved.
- Tokens and cost: Wilcoxon on the per-case differences, bootstrap CI of the ratio of the means.
  Latency, tokens and cost are judged per case, clusters or not.
- Holm–Bonferroni over the metrics of one comparison (Holm 1979).

Verdicts, with `worse` the effect in the bad direction and `min` the smallest drop worth an alarm:
  regressed    significant after Holm, and worse by at least `min`
  improved     significant after Holm, and better by at least `min` (the same bar as a regression)
  unchanged    not flagged, and the 95% CI excludes a drop of `min`
  inconclusive not flagged, but the CI still admits a drop of `min`

Every verdict carries its minimum detectable effect (MDE): the change the suite finds with 80%
power at its size and observed variance,
    MDE = (t_{1 - a/2, df} + t_{0.80, df}) * SE        (z quantiles, 1.96 + 0.84, for large df)
with SE the standard error of the mean difference (clustered where the test is) and a = alpha / m,
the level Holm asks of one metric that changed alone among the m of the comparison. A 0/1 metric
cannot move by δ unless a share δ of its N runs (per version) changes, so Var(mean d) >= δ(1-δ)/N
and its MDE is at least k^2 / (N + k^2) with k = t_{1-a/2} + t_{0.80}: a suite with no discordant
cases is not told it could have seen a change of zero. Latency's MDE is the uniform slowdown its
per-case test finds 80% of the time, exp(k * SE of the mean log ratio) - 1; tokens' and cost's
is k * SE of the mean per-case difference / the baseline mean. The simulations check that a change
of the MDE is found about 80% of the time; `Design` gives the MDE and the cases needed for an
effect at other sizes (`agentmon eval power`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

N_BOOT = 2000
POWER = 0.80  # the power a minimum detectable effect is stated at


def mcnemar_exact(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired booleans (the test before mid-p: the simulations
    measure what its discreteness cost)."""
    b = int(np.sum(baseline & ~candidate))
    c = int(np.sum(~baseline & candidate))
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(b, b + c, 0.5).pvalue)


def mcnemar_mid_p(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided mid-p McNemar p-value for paired booleans: the exact p-value minus the
    probability of the observed split, 2 * (P(X < k) + P(X = k) / 2) with X ~ Bin(b + c, 1/2) and
    k = min(b, c) (Fagerland et al. 2013)."""
    b = int(np.sum(baseline & ~candidate))
    c = int(np.sum(~baseline & candidate))
    if b + c == 0:
        return 1.0
    k = min(b, c)
    below = stats.binom.cdf(k - 1, b + c, 0.5) if k > 0 else 0.0
    return float(min(1.0, 2 * (below + 0.5 * stats.binom.pmf(k, b + c, 0.5))))


@dataclass(frozen=True)
class MeanDifference:
    """The mean of the per-case differences and its standard error, with the case (or, in a
    clustered dataset, the cluster) as the independent unit."""

    effect: float
    se: float
    n: int  # cases
    units: int  # clusters, or cases when unclustered

    @property
    def df(self) -> int:
        return self.units - 1


def mean_difference(differences: np.ndarray, clusters: np.ndarray | None = None) -> MeanDifference:
    """Mean of `differences` with its SE: sd / sqrt(n), or with `clusters` (integer codes, one per
    case) the cluster-robust SE of the module docstring (residuals summed per cluster)."""
    n = differences.size
    if n == 0:
        return MeanDifference(math.nan, math.nan, 0, 0)
    mean = float(differences.mean())
    # all equal: exactly no spread (a float mean of 0.1s is not quite 0.1, and 1e-17 is not a SE)
    residuals = differences - mean if differences.max() > differences.min() else np.zeros(n)
    if clusters is None:
        var = float(residuals @ residuals) / (n * (n - 1)) if n > 1 else math.nan
        return MeanDifference(mean, math.sqrt(var), n, n)
    sums = np.bincount(clusters, weights=residuals)
    units = int(np.count_nonzero(np.bincount(clusters)))
    var = units / (units - 1) * float(sums @ sums) / n**2 if units > 1 else math.nan
    return MeanDifference(mean, math.sqrt(var), n, units)


def paired_t_p(d: MeanDifference) -> float:
    """Two-sided p-value of the paired t-test (t = mean / SE, units - 1 degrees of freedom); NaN
    with fewer than two units. Every unit's difference the same (SE 0, t infinite): 1 when it is
    zero, else the sign-flip test's exact 2 / 2^units (all units moved the same way), so that two
    cases that both failed are not proof."""
    if d.units < 2 or math.isnan(d.se):
        return math.nan
    if d.se == 0:
        return 1.0 if d.effect == 0 else min(1.0, 2.0 ** (1 - d.units))
    return float(2 * stats.t.sf(abs(d.effect) / d.se, d.df))


def t_interval(d: MeanDifference, level: float = 0.95) -> tuple[float, float]:
    if d.units < 2 or math.isnan(d.se):
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, d.df)) * d.se
    return at_least_rule_of_three(d.effect - half, d.effect + half, d.units)


def at_least_rule_of_three(low: float, high: float, n: int) -> tuple[float, float]:
    """A 95% interval no narrower than the rule of three (Hanley & Lippman-Hand 1983): n cases
    that all changed alike (all 40 answered the same by both versions) still admit that 3/n of
    all cases change, by up to the whole range of a score or rate (1), or by 100% for a ratio. A
    bootstrap or t interval of such cases has width 0, and called "unchanged" a suite of 40 cases
    that could not see a 22-point drop."""
    if not n:
        return math.nan, math.nan
    floor = 3.0 / n
    centre = (low + high) / 2
    return min(low, centre - floor), max(high, centre + floor)


def detectable_multiplier(alpha: float, df: float = math.inf, power: float = POWER) -> float:
    """k = t_{1-alpha/2, df} + t_{power, df} (z quantiles for infinite df): a true difference of
    k standard errors is found with probability `power` by a two-sided test at `alpha`."""
    if math.isinf(df):
        return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))


@dataclass(frozen=True)
class Design:
    """What the power of a paired comparison depends on, so that it can be stated for other suite
    sizes: the variance of one case's difference (SE^2 * n, so clustering is included), cases per
    independent unit (cluster), and for a 0/1 metric its runs per case (the floor of the module
    docstring). Scale: the effect is `effect` itself ("absolute", "relative") or log(1 + effect)
    ("log", latency)."""

    case_variance: float
    cases_per_unit: float = 1.0
    runs_per_case: float | None = None  # a 0/1 metric
    scale: str = "absolute"
    repeats: float = 1.0  # runs per case and version measured
    # the variance of a case's difference that one run of each version adds (its repeats'
    # variances summed over both versions): what more repeats divide; NaN from one run per case
    within_variance: float = math.nan

    @classmethod
    def of(
        cls, d: MeanDifference, runs_per_case: float | None = None, scale: str = "absolute",
        repeats: float = 1.0, within_variance: float = math.nan,
    ) -> Design:  # fmt: skip
        per_unit = d.n / d.units if d.units else 1.0
        return cls(d.se**2 * d.n, per_unit, runs_per_case, scale, repeats, within_variance)

    def with_repeats(self, repeats: int) -> Design:
        """The same cases run `repeats` times each: the between-case part of the variance stays,
        the within-case part is divided by the repeats (needs a measured within-case variance)."""
        if math.isnan(self.within_variance):
            raise ValueError("the within-case variance is unknown: measured with one run per case")
        between = max(self.case_variance - self.within_variance / self.repeats, 0.0)
        runs = None if self.runs_per_case is None else float(repeats)
        return Design(between + self.within_variance / repeats, self.cases_per_unit, runs, self.scale,
                      float(repeats), self.within_variance)  # fmt: skip

    def _df(self, cases: float) -> float:
        return max(cases / self.cases_per_unit - 1, 1.0)

    def _floor(self, k: float, cases: float) -> float:
        if self.runs_per_case is None:
            return 0.0
        runs = self.runs_per_case * cases
        return k * k / (runs + k * k)

    def _to_effect(self, x: float) -> float:
        return math.expm1(x) if self.scale == "log" else x

    def _from_effect(self, effect: float) -> float:
        return abs(math.log1p(effect)) if self.scale == "log" else abs(effect)

    def mde(self, cases: float, alpha: float, power: float = POWER) -> float:
        """The smallest change found with probability `power` on `cases` cases (module docstring)."""
        if not cases or not math.isfinite(self.case_variance) or cases < 2:
            return math.nan
        k = detectable_multiplier(alpha, self._df(cases), power)
        return self._to_effect(max(k * math.sqrt(self.case_variance / cases), self._floor(k, cases)))

    def power(self, effect: float, cases: float, alpha: float) -> float:
        """Probability that a paired t-test at `alpha` on `cases` cases finds a true `effect`
        (noncentral t; for a 0/1 metric with the variance at least the floor's)."""
        delta = self._from_effect(effect)
        variance = self.case_variance
        if self.runs_per_case is not None:
            variance = max(variance, delta * (1 - delta) / self.runs_per_case)
        if cases < 2 or not math.isfinite(variance):
            return math.nan
        if variance == 0:
            return 1.0 if delta > 0 else alpha
        df = self._df(cases)
        shift = delta / math.sqrt(variance / cases)
        critical = stats.t.ppf(1 - alpha / 2, df)
        power = float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))
        if not math.isfinite(power):  # the noncentral t fails far out: the normal approximation
            power = float(stats.norm.sf(critical - shift) + stats.norm.cdf(-critical - shift))
        return power

    def cases_needed(self, effect: float, alpha: float, power: float = POWER) -> int | None:
        """The fewest cases whose MDE is at most `effect` (None: more than a billion)."""
        target = abs(effect)
        low, high = 2, 2
        while not self.mde(high, alpha, power) <= target:
            if high > 1e9:
                return None
            low, high = high, high * 2
        while low < high:  # the MDE falls as cases grow
            middle = (low + high) // 2
            if self.mde(middle, alpha, power) <= target:
                high = middle
            else:
                low = middle + 1
        return int(low)


def pass_rate_design(
    baseline_rate: float, effect: float, repeats: int = 1, difficulty_sd: float = 0.0
) -> Design:
    """The design of a pass rate that drops by `effect` from `baseline_rate` on every case, with
    per-case pass probabilities spread by `difficulty_sd` around it and `repeats` runs per case and
    version (Miller 2024's variance of a paired difference with resampling): the case's
    difference has the variance of its runs' Bernoulli noise, (E[p(1-p)] + E[q(1-q)]) / repeats,
    with E[p(1-p)] = p(1-p) - sd^2. No spread (sd 0) is the largest variance: the safe default."""
    omega2 = difficulty_sd**2
    q = baseline_rate - effect
    within = max(baseline_rate * (1 - baseline_rate) - omega2, 0.0) + max(q * (1 - q) - omega2, 0.0)
    return Design(within / repeats, 1.0, float(repeats), repeats=float(repeats), within_variance=within)


def pass_rate_mde(
    cases: int, baseline_rate: float, alpha: float, repeats: int = 1, difficulty_sd: float = 0.0,
    power: float = POWER,
) -> float:  # fmt: skip
    """The smallest drop from `baseline_rate` found with probability `power` on `cases` cases (the
    variance depends on the drop: solved for it). NaN when even a drop to 0 is not found."""
    from scipy.optimize import brentq

    def gap(drop: float) -> float:
        return pass_rate_design(baseline_rate, drop, repeats, difficulty_sd).mde(cases, alpha, power) - drop

    if gap(baseline_rate) > 0:
        return math.nan
    return float(brentq(gap, 1e-9, baseline_rate, xtol=1e-7))


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
    return at_least_rule_of_three(float(low), float(high), n)


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
    return at_least_rule_of_three(float(low), float(high), n)


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
