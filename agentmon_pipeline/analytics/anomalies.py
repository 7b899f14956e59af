"""Anomaly scores for a series (pure numpy/scipy; no warehouse).

Methods, each returning the expected value and a score per point (|score| >= threshold is an
anomaly):
- `zscore` (the seed document's): (x - mean) / sd of the previous `window` points.
- `mad`: the robust version, 0.6745 (x - median) / MAD of the previous `window` points
  (Iglewicz & Hoaglin's modified z-score). Where the MAD is 0 (a sparse series of mostly zeros)
  the mean absolute deviation takes its place (x 1.2533, Iglewicz & Hoaglin's own remedy), and
  a count's spread is never below its Poisson spread sqrt(max(median, 1)): one run in an hour
  of a quiet agent is not "10 sigma".
- `seasonal`: the expected value of every bucket is a level of its day times a profile of its
  hour (one profile for weekdays, one for weekends; for daily buckets, a week's level times a
  profile of its weekday), fitted as a Poisson log-linear model by iterative proportional fitting
  (Bishop, Fienberg & Holland 1975, ch. 3). Each day's level is shrunk towards the typical day of
  its kind by six hours' worth of traffic, so that the current day's first hours (or one spike in
  them) cannot set its level alone, and kept within 2.5 spreads of day levels of it, so that a
  whole abnormal day is not absorbed into its own expectation. The fit is robust: after each round, values beyond 2.5 of the
  noise model's standard deviations are pulled back to that bound and the model refitted
  (Huber's winsorised pseudo-observations), so a spike moves neither its day's level nor its
  hour's profile, and leaves no "echo" a day or a week away. The score is the normal quantile of
  the value's tail probability under a noise model for what the metric is:
    counts (runs): negative binomial, variance mu + alpha mu^2, alpha estimated from the series
      (the day-to-day and hour-to-hour wobble of real traffic on top of Poisson arrivals);
    sums (cost, tokens): expected as the runs' expected count times a run's expected value (a
      level of its day times a profile of its hour, fitted over the runs seen: `_per_run_fit`);
      judged as a compound sum of heavy-tailed per-run values: N runs, negative binomial around
      the expected run count (alpha from the run counts behind the sum), each lognormal with a
      log-sd estimated from the hours of few runs (`_run_sigma`); given N = k the sum is
      lognormal with the k-fold mean and variance (Fenton-Wilkinson), its upper tail never
      thinner than one run's carrying the excess alone, and its tails are summed over k
      (`_sum_scores`; tests/analytics/test_anomalies.py checks it against the exact law). A Poisson tail in
      "units" of cost is 10-1000x too thin at 3-5x the mean (checked by Monte Carlo against sums
      of lognormal run costs): it called one expensive run an anomaly;
    rates (error, success, retry rate): the exact binomial tail of k events in n runs at the
      expected rate (1 error in 2 runs against 5% is p = 0.098: not an anomaly; 30 in 60 is);
    levels (latency percentiles, system metrics): the log ratio to the expected value (the
      difference, for series with values <= 0), over a robust (MAD) spread estimated for each
      class of n, the runs or points behind the bucket (`_level_spread`).
  Fewer than three cycles of history fall back to `mad`, and say so.

Thresholds and what they cost, measured on a month of hourly traffic drawn as real traffic is
(`tests/traffic.py`, `tests/analytics/test_anomalies.py`): see docs/analytics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

DEFAULT_THRESHOLDS = {"zscore": 2.0, "mad": 3.5, "seasonal": 4.0}
# periods of the daily and weekly cycles, per granularity
PERIODS = {"15m": (96, 672), "1h": (24, 168), "1d": (7,)}
KINDS = ("count", "sum", "rate", "level")
SCORE_CAP = 10.0
WINSOR = 2.0
REJECT = 3.0  # robust refits pull values back to 2.5 standard deviations of the noise model
LEVEL_PRIOR_BUCKETS = 6  # a day's level is shrunk towards its kind's typical day by 6 buckets' worth
ROUNDS = 5
# levels' residuals have heavier tails than a normal (an hour's p95 of a few runs is nearly their
# maximum): they are judged as Student t with 10 degrees of freedom
LEVEL_DF = 10
IPF_ITERATIONS = 20
PROFILE_PRIOR_RUNS = 2.0  # counts' hourly profiles: a gamma prior worth two runs (`_fit`)
# a sum's value per run (`_per_run_fit`): a day's level is shrunk towards its kind's typical day by
# 10 runs' worth, an hour's profile towards flat by 20 runs' worth
PER_RUN_PRIOR_RUNS = 10.0
PER_RUN_PROFILE_RUNS = 20.0


@dataclass
class Scores:
    expected: np.ndarray
    score: np.ndarray
    method: str
    note: str = ""
    alpha: float = 0.0  # the seasonal model's overdispersion (counts), for the sums built on them
    sigma: float = 0.0  # sums: the estimated log-sd of one run's value (`_run_sigma`)


# --- rolling scores ---------------------------------------------------------------------------
def _rolling(values: np.ndarray, window: int, robust: bool, kind: str = "level") -> Scores:
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
            deviation = np.abs(past - centre)
            spread = float(np.median(deviation)) / 0.6745 or 1.2533 * float(deviation.mean())
            if kind == "count":
                spread = max(spread, math.sqrt(max(centre, 1.0)))
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


def mad_scores(values: np.ndarray, window: int = 10, kind: str = "level") -> Scores:
    return _rolling(values, window, robust=True, kind=kind)


# --- the seasonal model -----------------------------------------------------------------------
@dataclass
class Calendar:
    """Where each point sits: its cycle (`row`: a day, or a week for daily points), its position
    in the cycle (`col`: hour of day, or weekday), and its profile (`group`: 0 weekday, 1 weekend)."""

    row: np.ndarray
    col: np.ndarray
    group: np.ndarray
    period: int

    @property
    def cells(self) -> np.ndarray:
        return self.group * self.period + self.col

    @property
    def row_group(self) -> np.ndarray:
        """The kind of day (0 weekday, 1 weekend) of each row."""
        groups = np.zeros(int(self.row.max()) + 1, dtype=int)
        groups[self.row] = self.group
        return groups


def calendar(size: int, periods: tuple[int, ...], times: np.ndarray | None = None) -> Calendar:
    """The calendar of `size` points of a granularity with these periods, the first at `times[0]`
    (numpy datetime64, UTC; without times, the first point starts a Monday)."""
    period = periods[0]
    if times is None:
        index = np.arange(size)
        row, col = index // period, index % period
        weekday = row % 7 if len(periods) > 1 else np.zeros(size, dtype=int)
    else:
        days = times.astype("datetime64[D]")
        day_number = days.astype(np.int64)
        weekday = (day_number + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        if len(periods) > 1:  # buckets within a day
            row = day_number - day_number[0]
            bucket = (86400 // period) * 1_000_000
            col = ((times - days).astype("timedelta64[us]").astype(np.int64) // bucket).astype(int)
        else:  # days within a week
            monday = day_number - weekday
            row, col = (monday - monday[0]) // 7, weekday
    group = (weekday >= 5).astype(int) if len(periods) > 1 else np.zeros(size, dtype=int)
    return Calendar(
        np.asarray(row, dtype=int), np.clip(np.asarray(col, dtype=int), 0, period - 1), group, period
    )


def _fit(x: np.ndarray, w: np.ndarray, cal: Calendar, exposure: np.ndarray, profile_prior: float,
         unit: float = 0.0) -> np.ndarray:  # fmt: skip
    """exposure * level[row] * profile[group, col] by iterative proportional fitting (the Poisson
    maximum likelihood of the log-linear model with row and cell effects) over the points of
    weight 1; each row's level is shrunk towards the median level of full rows of its group.

    Each profile value is shrunk towards the profile both kinds of day share: by `profile_prior`
    (in units of a row's expected mass; rates), or, where `unit` (the value of one run: counts and
    sums) is given, by PROFILE_PRIOR_RUNS runs' worth of it, a gamma prior on the cell's Poisson
    mean (and the shared profile towards flat by as many). A cell of a quiet hour that saw no run in
    its few days of history is then expected a little, not nothing: with no prior its profile was
    exactly 0, any later run there scored "infinitely" surprising, the robust refit rejected it, and
    the cell stayed at 0 (two weekend nights of the demo's research-agent flagged at 10)."""
    n_rows, n_cells = int(cal.row.max()) + 1, 2 * cal.period
    cells, row_group = cal.cells, cal.row_group
    mass = exposure * w
    level_prior = LEVEL_PRIOR_BUCKETS * (mass.sum() / max(w.sum(), 1.0))
    profile = np.ones(n_cells)
    for _ in range(IPF_ITERATIONS):
        num = np.bincount(cal.row, x * w, n_rows)
        den = np.bincount(cal.row, mass * profile[cells], n_rows)
        raw = num / np.where(den > 0, den, 1.0)
        fallback = float(np.median(raw[den > 0])) if (den > 0).any() else 0.0
        level = _day_levels(num, den, row_group, level_prior, fallback)
        num = np.bincount(cells, x * w, n_cells).reshape(2, -1)
        den = np.bincount(cells, mass * level[cal.row], n_cells).reshape(2, -1)
        if unit > 0:  # gamma priors in runs: hour of the day towards flat, kind of day towards shared
            runs = PROFILE_PRIOR_RUNS * unit
            shared = (num.sum(0) + runs) / (den.sum(0) + runs)
            new = shared * (num + runs) / (den * shared + runs)
        else:
            shared = (num.sum(0) + 1e-300) / (den.sum(0) + 1e-300)
            prior = profile_prior * den.sum(1, keepdims=True) / cal.period
            new = (num + prior * shared) / (den + prior + 1e-300)
        # a kind of day without data (or too few) takes the other's profile
        new = np.where(den > 0, new, shared)
        profile = (new / np.maximum(new.mean(axis=1, keepdims=True), 1e-300)).ravel()
    return exposure * level[cal.row] * profile[cells]


def _per_run_fit(x, w, n, cal: Calendar, runs: np.ndarray) -> np.ndarray:
    """A sum's expected value (cost, tokens): the expected runs of its hour (the count model of
    the runs behind it) times the expected value of one run, a level of its day times a profile
    of its hour, fitted over the runs seen (the sum of the values over the sum of the runs). A run's
    value is estimated from every run of a day, however the runs fall: fitted as a level and
    profile of the sum itself, a quiet hour's expectation followed its few runs, and the rare hour
    of three runs where one is usual scored as if each had cost ten times its due. Each day's level
    is shrunk towards the typical day of its kind by PER_RUN_PRIOR_RUNS runs and held within 2.5
    spreads of day levels (`_clip_levels`: a day of runs at five times the cost is not absorbed);
    each hour's profile is shrunk towards flat by PER_RUN_PROFILE_RUNS runs. The hours of weight 0
    (rejected by the robust refit) are left out; no value is winsorised, as a sum's noise is too
    skewed in quiet hours for a bound in standard deviations (it clipped their ordinary sums and
    biased the level down)."""
    n_rows, n_cells = int(cal.row.max()) + 1, 2 * cal.period
    cells, row_group = cal.cells, cal.row_group
    seen_runs = (w * n).sum()
    overall = (w * x).sum() / seen_runs if seen_runs > 0 else 0.0
    if overall <= 0:
        return np.zeros(x.size)
    profile = np.ones(n_cells)
    for _ in range(IPF_ITERATIONS):
        num = np.bincount(cal.row, w * x, n_rows)
        den = np.bincount(cal.row, w * n * profile[cells], n_rows)
        level = _day_levels(num, den, row_group, PER_RUN_PRIOR_RUNS, overall)
        prior = PER_RUN_PROFILE_RUNS * overall
        num = np.bincount(cells, w * x, n_cells)
        den = np.bincount(cells, w * n * level[cal.row], n_cells)
        profile = (num + prior) / (den + prior)
    return runs * level[cal.row] * profile[cells]


def _day_levels(num, den, row_group, prior: float, fallback: float) -> np.ndarray:
    """Each row's level num / den, shrunk towards the typical level of its kind of day (the median
    over its full rows, those with at least half the largest den; `fallback` where none is) by
    `prior` units of den, and held within reach of it (`_clip_levels`)."""
    raw = num / np.where(den > 0, den, 1.0)
    typical = np.zeros(den.size)
    for g in (0, 1):  # two kinds of day
        mine = row_group == g
        full = mine & (den >= 0.5 * den[mine].max(initial=0.0)) & (den > 0)
        typical[mine] = np.median(raw[full]) if full.any() else fallback
    return _clip_levels((num + prior * typical) / (den + prior), typical, row_group, den > 0)


def _clip_levels(level, typical, row_group, seen) -> np.ndarray:
    """A day's level may differ from its kind's typical day by the spread of day levels (1.4826
    MAD of their logs) times WINSOR, no more: day-to-day drift is followed, a day at ten times the
    usual is not absorbed into its own expectation (its hours are then the anomalies)."""
    ratio = np.log(np.maximum(level, 1e-300) / np.maximum(typical, 1e-300))
    out = level.copy()
    for g in (0, 1):
        mine = (row_group == g) & seen & (typical > 0)
        if mine.sum() < 3:
            continue
        tau = max(_spread(np.maximum(ratio[mine], -5.0)), 0.05)
        out[mine] = typical[mine] * np.exp(np.clip(ratio[mine], -WINSOR * tau, WINSOR * tau))
    return out


def _normal_score(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The smaller of the two tail probabilities as a signed normal quantile."""
    with np.errstate(divide="ignore", invalid="ignore"):
        up = stats.norm.isf(np.clip(upper, 1e-300, 0.5))
        down = -stats.norm.isf(np.clip(lower, 1e-300, 0.5))
    return np.clip(np.where(upper < lower, up, down), -SCORE_CAP, SCORE_CAP)


@dataclass
class Noise:
    """The noise model of a series (module docstring): counts' and sums' overdispersion, sums'
    per-run log-sd and expected runs, levels' spread per point."""

    kind: str
    alpha: float = 0.0
    spread: np.ndarray | float = 0.0  # levels: the spread of each point's residual
    log: bool = True
    sigma: float = 0.0  # sums: the log-sd of one run's value
    runs: np.ndarray | None = None  # sums: the expected runs behind each bucket

    def scores(self, x, mu, n):
        if self.kind == "count":
            return _nb_scores(x, mu, self.alpha)
        if self.kind == "sum":
            return _sum_scores(x, mu, self.runs, self.alpha, self.sigma)
        if self.kind == "rate":
            return rate_scores(x, n, np.where(n > 0, mu / np.maximum(n, 1e-300), 0.0))
        t = self.residual(x, mu) / self.spread
        return _normal_score(stats.t.sf(t, LEVEL_DF), stats.t.cdf(t, LEVEL_DF))

    def residual(self, x, mu):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.maximum(x, 1e-300) / np.maximum(mu, 1e-300)) if self.log else x - mu

    def bounds(self, mu, n, z: float):
        """Where a value stops being ordinary: the robust refit pulls values back to here."""
        if self.kind == "level":
            step = z * self.spread
            return (mu * np.exp(-step), mu * np.exp(step)) if self.log else (mu - step, mu + step)
        if self.kind == "rate":
            p = np.clip(np.where(n > 0, mu / np.maximum(n, 1e-300), 0.0), 0, 1)
            sd = np.sqrt(n * p * (1 - p))
            return np.maximum(mu - z * sd, 0.0), np.minimum(mu + z * sd, n)
        if self.kind == "sum":  # compound: the count's variance times the run's second moment
            runs = np.maximum(self.runs, 1e-9)
            mean_run = mu / runs
            sd = np.sqrt((runs + self.alpha * runs**2) * mean_run**2 * np.exp(self.sigma**2))
        else:
            sd = np.sqrt(mu + self.alpha * mu**2)
        return np.maximum(mu - z * sd, 0.0), mu + z * sd


def _nb_scores(x, mu, alpha):
    """Negative binomial (alpha > 0) or Poisson tail probabilities of the counts x, as scores."""
    m = np.maximum(mu, 1e-12)
    if alpha <= 1e-9:
        upper = np.where(x > 0, special.gammainc(np.maximum(x, 1e-12), m), 1.0)  # P(X >= x)
        lower = special.gammaincc(x + 1, m)  # P(X <= x)
    else:
        r = 1.0 / alpha
        p = r / (r + m)
        upper = np.where(x > 0, special.betainc(np.maximum(x, 1e-12), r, 1 - p), 1.0)
        lower = special.betainc(r, x + 1, p)
    return _normal_score(upper, lower)


def _sum_scores(x, mu, runs, alpha, sigma):
    """Sums of per-run values: N runs, negative binomial around their expected count `runs`, each
    lognormal with log-sd `sigma` and mean mu / runs; given N = k the sum is taken as lognormal
    with the k-fold mean and variance (Fenton-Wilkinson), its upper tail never thinner than that
    of one run carrying the excess alone (the "single big jump" of sums of heavy-tailed values).
    Fenton-Wilkinson alone is too thin there: checked by Monte Carlo at its 4-sigma point, the true
    tail is 5-11x as likely at sigma 1 and 5-40 runs (33x at sigma 1.5 and 100 runs), and each such
    hour was an "anomaly"; with the jump it is within 2x everywhere from sigma 0.5 to 2 and 2 to 100
    runs. Tail probabilities over k = 0..K."""
    runs = np.maximum(runs, 1e-9)
    mean_run = mu / runs
    sd_runs = np.sqrt(runs + alpha * runs**2)
    top = int(min(max(float(np.max(runs + 8 * sd_runs)), 1.0) + 10, 2000))
    k = np.arange(1, top + 1, dtype=float)
    if alpha <= 1e-9:
        pmf = stats.poisson.pmf(k[None, :], runs[:, None])
        none = np.exp(-runs)
    else:
        size = 1.0 / alpha
        pmf = stats.nbinom.pmf(k[None, :], size, (size / (size + runs))[:, None])
        none = (size / (size + runs)) ** size
    s2 = np.log1p(np.expm1(sigma**2) / k)  # the log-variance of a sum of k lognormals
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (
            np.log(np.maximum(x, 1e-300))[:, None] - np.log(k[None, :] * mean_run[:, None]) + s2 / 2
        ) / np.sqrt(s2)
        # one big run: the k - 1 others at their mean and one beyond the rest of x (the sum of
        # heavy-tailed values is large mostly because one of them is)
        rest = x[:, None] - (k[None, :] - 1) * mean_run[:, None]
        one = stats.norm.sf(
            (np.log(np.maximum(rest, 1e-300)) - np.log(mean_run)[:, None] + sigma**2 / 2) / max(sigma, 1e-9)
        )
    # (where the others alone reach x, their mean is above it and the lognormal approximation holds)
    jump = np.where(rest > 0, -np.expm1(k[None, :] * np.log1p(-np.minimum(one, 1 - 1e-16))), 0.0)
    upper = np.where(x > 0, (pmf * np.maximum(stats.norm.sf(z), jump)).sum(axis=1), 1.0)
    lower = none + (pmf * stats.norm.cdf(z)).sum(axis=1)
    return _normal_score(upper, np.minimum(lower, 1.0))


def _run_sigma(x, n, mu, runs, use) -> float:
    """The log-sd of one run's value, from the ordinary hours with the fewest runs (10 or fewer,
    or the 100 quietest), where a run's own spread dominates an hour's: sigma is where the robust
    spread (1.4826 MAD) of their log value per run, log(x / n), equals that of hours of the same
    run counts drawn from lognormal runs of log-sd sigma (simulated with fixed draws, the same for
    every sigma: indirect inference). No approximation of a sum's law and no fitted expectation is
    in the estimate. Fenton-Wilkinson's log-sd is 5-20% wider than the true centre of a sum of
    2-40 runs at sigma 1-1.5; and the fitted expected value per run (the sum's fit over the runs'
    fit) follows a quiet agent's few costly runs, hour by hour: residuals against either came out
    10-20% too narrow, and so did sigma. A change of the cost per run within the window widens the
    estimate (fewer, not more, anomalies). With fewer than 20 hours, from the sum's variance per
    run (for a lognormal, E[c^2] / E[c] = E[c] exp(sigma^2))."""
    mean_run = mu / np.maximum(runs, 1e-300)
    ok = use & (n >= 1) & (x > 0) & (mean_run > 0)
    if ok.sum() >= 20:
        quiet = ok & (n <= 10)
        if quiet.sum() < 20:
            quiet = ok & (n <= np.sort(n[ok])[min(99, ok.sum() - 1)])
        observed = _spread(np.log(x[quiet] / n[quiet]))
        k = n[quiet].astype(int)
        reps = int(np.clip(50_000 // k.sum(), 2, 64))  # simulated hours: about 50,000 runs in all
        counts = np.tile(k, reps)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        draws = np.random.default_rng(0).standard_normal(int(counts.sum()))

        def gap(sigma: float) -> float:
            means = np.add.reduceat(np.exp(sigma * draws - sigma * sigma / 2), starts) / counts
            return _spread(np.log(means)) - observed

        low, high = 0.05, 5.0
        if gap(low) >= 0:
            return low
        return high if gap(high) <= 0 else float(optimize.brentq(gap, low, high, xtol=1e-3))
    excess = ((x - mu) ** 2)[use].sum() / max(runs[use].sum(), 1e-300)  # E[c^2], roughly
    mean = mu[use].sum() / max(runs[use].sum(), 1e-300)
    return float(np.sqrt(np.log(max(excess / max(mean**2, 1e-300), 1.0 + 1e-6))))


def _alpha(x, mu, use) -> float:
    """Negative binomial overdispersion by moments: least squares of (x - mu)^2 - mu on mu^2,
    over the points within 5 standard deviations (from Poisson's up: a spike left in would make
    the noise look wide enough to hide it)."""
    alpha = 0.0
    for _ in range(3):
        keep = use & (np.abs(x - mu) <= 5 * np.sqrt(mu + alpha * mu**2 + 1e-12))
        excess = ((x - mu) ** 2 - mu)[keep]
        alpha = float(np.clip((excess * mu[keep] ** 2).sum() / max((mu[keep] ** 4).sum(), 1e-300), 0.0, 4.0))
    return alpha


def _spread(residuals: np.ndarray) -> float:
    """1.4826 MAD, or 1.2533 x the mean absolute deviation where the MAD is 0; never 0."""
    if residuals.size == 0:
        return 1.0
    centre = float(np.median(residuals))
    deviation = np.abs(residuals - centre)
    spread = 1.4826 * float(np.median(deviation)) or 1.2533 * float(deviation.mean())
    return spread if spread > 0 else 1e-6


def _noise(kind, x, mu, n, use, runs: Scores | None, log: bool) -> Noise:
    if kind == "count":
        return Noise(kind, alpha=_alpha(x, mu, use))
    if kind == "sum":
        expected_runs = np.maximum(runs.expected, 1e-9)
        return Noise(
            kind, alpha=runs.alpha, runs=expected_runs, sigma=_run_sigma(x, n, mu, expected_runs, use)
        )
    if kind == "rate":
        return Noise(kind)
    noise = Noise(kind, log=log)
    noise.spread = _level_spread(noise.residual(x, mu), n, use, floor=0.01 if log else 0.0)
    return noise


def _level_spread(residual, n, use, floor: float) -> np.ndarray:
    """The spread of each point's residual, by how many runs (or points) are behind it: a p95 of
    one run varies more than a p95 of fifty, but not 1/sqrt(n) as a mean would. Classes of n
    (1, 2-3, 4-7, ...) with 30 points or more get their own robust spread; the others the pooled
    spread scaled by 1/sqrt(n). `floor`: 1% on the log scale (below it a change is rounding)."""
    n = np.maximum(n, 1.0)
    pooled = _spread((residual * np.sqrt(n))[use])
    spread = pooled / np.sqrt(n)
    classes = np.floor(np.log2(n)).astype(int)
    for c in np.unique(classes[use]):
        mine = use & (classes == c)
        if mine.sum() >= 30:
            spread = np.where(classes == c, _spread(residual[mine]), spread)
    return np.maximum(spread, floor or 1e-12)


def seasonal_scores(
    values: np.ndarray, periods: tuple[int, ...], window: int = 10, kind: str = "level",
    n: np.ndarray | None = None, k: np.ndarray | None = None, times: np.ndarray | None = None,
) -> Scores:  # fmt: skip
    """The seasonal model (module docstring). `n`: runs (or points) behind each bucket; `k`: for
    rates, the events counted (the values are then k / n)."""
    period = periods[0]
    if values.size < 3 * period:
        fallback = mad_scores(values, window, kind)
        fallback.note = f"{values.size} points: too short for three cycles of {period}; robust rolling score"
        return fallback
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    n = np.ones(values.size) if n is None else np.asarray(n, dtype=float)
    if kind == "rate":  # the events are modelled, with the runs as exposure
        x, exposure, observed = np.asarray(k, dtype=float), n, n > 0
    else:
        x, exposure, observed = values.astype(float), np.ones(values.size), np.isfinite(values)
    x = np.where(observed, x, 0.0)
    positive = not (x[observed] <= 0).any()
    log = kind == "level" and positive
    shift = 0.0
    if kind == "level" and not positive:  # values of any sign: the fit needs them above zero
        shift = float(_spread(x[observed])) - float(x[observed].min()) + 1e-9
    cal = calendar(values.size, periods, times)
    runs = None
    if kind == "sum":  # the runs behind the sum: their expected count and its overdispersion
        runs = seasonal_scores(n, periods, window, "count", times=times)
    profile_prior = 2.0 if kind == "rate" else 0.0  # events are few: a rate's hourly profile is shrunk
    # counts and sums: the value of one run, the unit of their profiles' prior
    unit = (
        1.0
        if kind == "count"
        else float(x[observed].sum() / max(n[observed].sum(), 1.0))
        if kind == "sum"
        else 0.0
    )
    winsorised = x + shift
    use = observed
    w = observed.astype(float)
    # a sum is the runs' count times a run's value, unless values come without runs behind them
    per_run = kind == "sum" and not (x[observed & (n <= 0)] > 0).any()
    for round_ in range(ROUNDS):
        if per_run:
            mu = _per_run_fit(x, w, n, cal, runs.expected)
        else:
            mu = _fit(winsorised, w, cal, exposure, profile_prior, unit) - shift
        noise = _noise(kind, x, mu, n, use, runs, log)
        score = np.where(observed, noise.scores(x, mu, n), 0.0)
        low, high = noise.bounds(mu + shift, n, WINSOR)
        winsorised = np.clip(x + shift, low, high)
        w = (observed & (np.abs(score) < REJECT)).astype(float)
        settled = observed & (np.abs(score) < DEFAULT_THRESHOLDS["seasonal"])
        if (settled == use).all() and round_ > 0:
            break
        use = settled
    expected = np.where(observed, mu / np.where(observed, exposure, 1.0), np.nan) if kind == "rate" else mu
    return Scores(expected, score, "seasonal", _note(cal), alpha=noise.alpha, sigma=noise.sigma)


def _note(cal: Calendar) -> str:
    kinds = "weekday and weekend profiles" if cal.group.any() and (cal.group == 0).any() else "one profile"
    return f"robust level x profile fit ({kinds} of {cal.period} buckets)"


def rate_scores(k: np.ndarray, n: np.ndarray, expected_rate: np.ndarray) -> np.ndarray:
    """The exact binomial surprise of k events in n runs at the expected rate, as a normal quantile
    (positive: more events than expected). Buckets without runs score 0."""
    p0 = np.clip(np.nan_to_num(expected_rate, nan=0.5), 1e-4, 1 - 1e-4)
    upper = stats.binom.sf(k - 1, n, p0)  # P(X >= k)
    lower = stats.binom.cdf(k, n, p0)  # P(X <= k)
    return np.where(n > 0, _normal_score(upper, lower), 0.0)


def score_series(
    values: np.ndarray, method: str, window: int, periods: tuple[int, ...],
    k: np.ndarray | None = None, n: np.ndarray | None = None, kind: str | None = None,
    times: np.ndarray | None = None,
) -> Scores:  # fmt: skip
    """Scores for one series of a kind (count, sum, rate, level); with k and n it is a rate,
    judged by its sample size."""
    kind = kind or ("rate" if k is not None and n is not None else "level")
    if method == "zscore":
        result = zscore_scores(values, window)
    elif method == "mad":
        result = mad_scores(values, window, kind)
    elif method == "seasonal":
        result = seasonal_scores(values, periods, window, kind, n, k, times)
    else:
        raise ValueError(f"method {method!r}: expected zscore, mad or seasonal")
    if kind == "rate" and result.method != "seasonal":  # the rolling scores' expectation, judged by n
        expected = np.clip(result.expected, 0, 1)
        # no expectation (too little history before the point) is no judgement, not a guess of 0.5
        result.score = np.where(np.isfinite(expected), rate_scores(k, n, expected), 0.0)
        result.expected = expected
    return result
