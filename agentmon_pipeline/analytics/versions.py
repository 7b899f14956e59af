"""Did the last deployment make things worse? Each agent version against the one it replaced,
from production runs. The unit is the day, not the run: runs of the same day share its traffic,
its load and its upstream weather, so 3,000 runs of two days are two observations of "a day of
this version", not 3,000 (measured: per-run tests gave a false verdict in 22% of comparisons
after 36 hours and 48% after 7 days of identical versions with day-to-day effects).

Matched periods: a version's switch time is when it went live: its activation or rollback in
the registry, or a deployment event, else its first production run. Days are counted from the
switch (24-hour periods, so each covers every hour of the day once, on both sides). A rollback is
a switch too: the restored version is compared with the one it replaced. Runs without a cost (a model without a price) are
left out of the cost comparison, not counted at $0.

Each day gives a value: its success rate, the mean log latency of its runs (the typical run: a
whole-distribution shift shows in it with half the sampling noise of a p95), the log of its p95
latency (a slower tail), the log of its mean cost per run. The effect is the step at the switch
in the daily values, the candidate's days against the previous version's days before the switch
(up to 28; for latency and cost shown as a ratio - 1). How much the agent's days vary when
nothing is deployed comes from the days of the 28 before the switch, each against the mean of
its own version's days (so that what earlier deployments did to the level is not counted as
noise, and a version live for a day is still judged against the agent's history): a standard
deviation and a lag-1 autocorrelation (bias-corrected as Kendall 1954, E[r] ~ rho - (1 + 4 rho) /
n, clipped to [0, 0.9]), an AR(1) model of days. The step is its generalised least squares
estimate under that model (`_step`: with correlated days, those next to the switch share most of
its weather and weigh more; with rho = 0, the difference of the means), with the standard error
the model gives it. The test is Student's t with days - versions degrees of freedom (at least
MIN_HISTORY_DAYS - 1); the 95% CI is effect +- t x SE; the note says the smallest change the
comparison would find 80% of the time ("detectable at 80% power").

Looks: a deployment is judged after 3 days of the candidate, and finally after 7 (or, if the next
version replaced it sooner, over all its whole days, at least 2). Between looks the verdict stays
that of the last look, however often the pipeline refreshes, and each look is tested at alpha / 2
(Bonferroni over the two looks), so a deployment that changed nothing gets a false verdict in at
most alpha of its weeks. One day cannot decide: a day of calendar time lies in one 24-hour period
or across two adjacent ones; a significant result that, without such a day that is abnormal (a
period more than ABNORMAL_SD day deviations from its side's other days), falls under the
significance threshold of the whole window (or changes sign) is reported as
inconclusive, with that day and the effect without it named; where such a day carries most of an
effect that stands without it, the note says so too (fewer days alone do not count: a uniform
change survives it). Holm over every metric of every
comparison of a refresh (one family: what the check and the alerts act on), and the verdicts of
the evaluation issue (regressed, improved, unchanged, inconclusive), with min effects of 0.02
(success rate) and 10% (latency, cost).

What it costs: the day is the unit, so a small change needs days to show through the day-to-day
weather. Measured (tests/analytics/test_versions.py, day effects of sd 0.1): see docs/analytics.md.
Without the typical-run metric and the GLS step, a +30% slowdown was found after 3 days 12.5% of
the time (the p95 of ~120 runs a day is as noisy as the day effect itself).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import numpy as np
from scipy import stats as sps

from agentmon_pipeline.evaluation.stats import holm, verdict

MIN_RUNS = 10  # fewer runs on either side: not compared (recorded as inconclusive)
DAY = timedelta(days=1)
MAX_WINDOW_DAYS = 7
MIN_HISTORY_DAYS = 4  # days of the previous version that show how much its days vary
HISTORY_DAYS = 28
LOOK_DAYS = (3, MAX_WINDOW_DAYS)  # a deployment is judged after 3 days, and finally after 7
LOOKS = len(LOOK_DAYS)
ABNORMAL_SD = 3.0  # a day this many day deviations from its side's other days is abnormal


def look_days(days_live: int, closed: bool) -> int:
    """The candidate's days a comparison uses: the last look reached (3, then 7 days), or all its
    whole days once the next version replaced it (its final look; at least 2). 0: no look yet."""
    if days_live >= MAX_WINDOW_DAYS:
        return MAX_WINDOW_DAYS
    if closed and days_live >= 2:
        return days_live
    return LOOK_DAYS[0] if days_live >= LOOK_DAYS[0] else 0


METRICS = ("success_rate", "typical_duration_ms", "p95_duration_ms", "cost_per_run_usd")


@dataclass
class VersionComparison:
    agent_id: str
    baseline_version: str
    candidate_version: str
    switched_at: object
    window_hours: float
    metric: str
    n_baseline: int
    n_candidate: int
    baseline_value: float
    candidate_value: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    verdict: str
    test: str
    # not a column: what a comparison that cannot judge yet waits for (has, needs, unit)
    waiting: tuple[int, int, str] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
                if k != "waiting"}  # fmt: skip


def daily_values(runs, origin, days: int):
    """Per 24-hour period from `origin` (negative days: before it) and version, the day's success
    rate, log p95 latency, log mean cost per priced run (null where the day has no such runs), its
    runs and priced runs; a polars DataFrame in day order, `days` days (positive: from origin on;
    negative: the last ones before it)."""
    import polars as pl

    first = min(days, 0)
    index = ((pl.col("started_at") - pl.lit(origin)).dt.total_microseconds() // 86_400_000_000).alias("day")
    return (
        runs.with_columns(index)
        .filter(pl.col("day").is_between(first, first + abs(days) - 1))
        .group_by("day", "agent_version")
        .agg(
            pl.col("is_success").cast(pl.Float64).mean().alias("success_rate"),
            pl.col("duration_ms").clip(1).log().mean().alias("typical_duration_ms"),
            pl.col("duration_ms").quantile(0.95, "linear").log().alias("p95_duration_ms"),
            pl.col("cost_usd").drop_nulls().mean().log().alias("cost_per_run_usd"),
            pl.len().alias("n"), pl.col("cost_usd").drop_nulls().len().alias("priced"),
        )
        .with_columns(pl.col(METRICS).cast(pl.Float64).fill_nan(None))
        # a day split by an earlier switch is two part-days, neither like a whole day: left out
        .filter(pl.len().over("day") == 1)
        .sort("day", "agent_version")
    )  # fmt: skip


def within_version(days, metric: str) -> tuple[np.ndarray, int]:
    """The daily values' deviations from their version's mean, in day order, and their degrees of
    freedom (days - versions): how much days vary when nothing is deployed, whatever the versions
    before the switch did to the level."""
    import polars as pl

    seen = days.filter(pl.col(metric).is_not_null())
    residual = seen[metric] - seen.select(pl.col(metric).mean().over("agent_version"))[metric]
    return residual.to_numpy().astype(float), seen.height - seen["agent_version"].n_unique()


def _step(base_days: np.ndarray, cand_days: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
    """The generalised least squares estimate of a step at the switch in days that follow an AR(1)
    with lag-1 correlation rho (correlation rho ** |days apart|, so gaps count): the weights that
    give the step from the daily values (baseline's, then the candidate's) and its variance over
    the variance of one day. With rho = 0, the difference of the two means. With rho > 0 the days
    next to the switch weigh more: they share most of its weather (Aitken 1935; for AR(1) errors,
    the Prais-Winsten estimator with a known rho)."""
    days = np.r_[base_days, cand_days].astype(float)
    corr = rho ** np.abs(np.subtract.outer(days, days))
    design = np.c_[np.ones(days.size), np.r_[np.zeros(base_days.size), np.ones(cand_days.size)]]
    solved = np.linalg.solve(corr, design)
    cov = np.linalg.inv(design.T @ solved)
    return (cov @ solved.T)[1], float(cov[1, 1])


def day_noise(residuals: np.ndarray, df: int) -> tuple[float, float]:
    """The standard deviation of the days (from their deviations, with `df` degrees of freedom) and
    their lag-1 autocorrelation, corrected for its small-sample bias (Kendall 1954: E[r] ~ rho -
    (1 + 4 rho) / n), clipped to [0, 0.9]. NaN under 3 degrees of freedom."""
    if df < 3:
        return math.nan, 0.0
    n, ss = residuals.size, float((residuals**2).sum())
    r = float((residuals[1:] * residuals[:-1]).sum() / ss) if ss > 0 else 0.0
    rho = (r * n + 1) / (n - 4) if n > 4 else r
    return math.sqrt(ss / df), float(np.clip(rho, 0.0, 0.9))


@dataclass
class DayTest:
    effect: float  # candidate - baseline, of the daily values (log scale for ratios)
    se: float
    df: int
    p_value: float
    # the periods (indices in base, then cand) of the day whose removal leaves the least effect, and
    # that effect: an abnormal day of calendar time falls in one 24-hour period or two adjacent ones
    day: tuple[int, ...] = ()
    without_day: float = math.nan
    decides: bool = False  # significant, and not without that day


def day_test(base: np.ndarray, cand: np.ndarray, residuals: np.ndarray, df: int, alpha: float,
             base_days: np.ndarray | None = None, cand_days: np.ndarray | None = None) -> DayTest:  # fmt: skip
    """The baseline's daily values (its days before the switch) against the candidate's (its days
    after it), with the day noise of the days before the switch (`within_version`): the step's GLS
    estimate under AR(1) days (`_step`; `base_days`, `cand_days`: the days' offsets from the switch,
    consecutive by default). With p < alpha: the day that carries most of the effect, and whether
    it decides (without it, the effect falls under the whole window's critical value or changes
    sign)."""
    sd, rho = day_noise(residuals, df)
    df = max(df, 1)
    if not math.isfinite(sd) or sd == 0 or base.size == 0 or cand.size == 0:
        return DayTest(math.nan, math.nan, df, math.nan)
    base_days = np.arange(-base.size, 0) if base_days is None else np.asarray(base_days)
    cand_days = np.arange(cand.size) if cand_days is None else np.asarray(cand_days)
    offsets = np.r_[base_days, cand_days]

    def test(keep: np.ndarray) -> tuple[float, float, float]:
        b, c = keep[: base.size], keep[base.size :]
        weights, variance = _step(base_days[b], cand_days[c], rho)
        effect = float(weights @ np.r_[base[b], cand[c]])
        se = sd * math.sqrt(variance)
        return effect, se, float(2 * sps.t.sf(abs(effect) / se, df))

    everything = np.ones(offsets.size, dtype=bool)
    effect, se, p = test(everything)
    result = DayTest(effect, se, df, p)
    if p >= alpha or min(base.size, cand.size) < 2:
        return result
    # an abnormal day of calendar time (an incident, a 10x cost day) lies in one 24-hour period
    # from the switch or across two adjacent ones: each such day is left out in turn (at most 69
    # small re-tests, not a loop over runs), a side keeping at least one day. Abnormal: one of its
    # periods lies more than ABNORMAL_SD day deviations from the mean of its side's other days (a
    # change of every day, which the comparison is for, is not one day's)
    values, side = np.r_[base, cand], np.r_[np.zeros(base.size, bool), np.ones(cand.size, bool)]
    days = [(i,) for i in range(offsets.size)]
    days += [
        (i, j)
        for i in range(offsets.size)
        for j in range(i + 1, offsets.size)
        if offsets[j] - offsets[i] == 1
    ]
    for day in days:
        keep = everything.copy()
        keep[list(day)] = False
        if not keep[: base.size].any() or not keep[base.size :].any():
            continue
        others = [values[keep & (side == side[i])] for i in day]
        if not any(abs(values[i] - rest.mean()) > ABNORMAL_SD * sd * math.sqrt(1 + 1 / rest.size)
                   for i, rest in zip(day, others, strict=True)):  # fmt: skip
            continue
        left = test(keep)[0]
        if math.isnan(result.without_day) or left * np.sign(effect) < result.without_day * np.sign(effect):
            result.day, result.without_day = day, left
    if not result.day:
        return result
    # the effect that is left without the day, against the whole window's critical value: fewer
    # days alone (a wider interval) does not make a day decide, its weight does
    critical = sps.t.isf(alpha / 2, df) * se
    left = result.without_day
    result.decides = bool(abs(left) < critical or np.sign(left) != np.sign(effect))
    return result


def switches(runs, deployments=None) -> list[tuple[str, str, object]]:
    """(agent_id, version, time) at which each version went live, in time order per agent.

    From `deployments` (agent_id, agent_version, deployed_at: registry activations and rollbacks,
    deployment events) where there are any; a version that ran without a recorded deployment
    goes live at its first run. A "switch" to the version already live is dropped."""
    import polars as pl

    firsts = (
        runs.filter(pl.col("agent_version").is_not_null())
        .group_by("agent_id", "agent_version")
        .agg(pl.col("started_at").min().alias("deployed_at"))
    )
    if deployments is not None and deployments.height:
        deployed = deployments.select("agent_id", "agent_version", "deployed_at").filter(
            pl.col("agent_version").is_not_null()
        )
        firsts = pl.concat(
            [
                deployed.cast(firsts.schema),
                firsts.join(deployed, on=["agent_id", "agent_version"], how="anti"),
            ]
        )
    out = []
    for (agent_id,), rows in firsts.sort("agent_id", "deployed_at").group_by("agent_id", maintain_order=True):
        live = None
        for row in rows.iter_rows(named=True):
            if row["agent_version"] != live:
                out.append((agent_id, row["agent_version"], row["deployed_at"]))
                live = row["agent_version"]
    return out


def compare_versions(runs, deployments=None) -> list[VersionComparison]:
    """`runs`: a polars DataFrame of production runs (agent_id, agent_version, started_at,
    is_success, duration_ms, cost_usd); `deployments`: when versions went live (see `switches`).
    Every version against the one live before it (module docstring): the candidate's whole days
    from its switch (its latest look: 3 or 7 days, or all of them once the next version came),
    against the previous version's days in the 28 before it, with the day noise of those 28."""
    import polars as pl

    out: list[VersionComparison] = []
    by_agent: dict[str, list] = {}
    for agent_id, version, at in switches(runs, deployments):
        by_agent.setdefault(agent_id, []).append((version, at))
    for agent_id, timeline in by_agent.items():
        agent_runs = runs.filter(pl.col("agent_id") == agent_id)
        for i in range(1, len(timeline)):
            (previous, previous_at), (current, switch) = timeline[i - 1], timeline[i]
            until = timeline[i + 1][1] if i + 1 < len(timeline) else None
            cand_all = agent_runs.filter(
                (pl.col("agent_version") == current) & (pl.col("started_at") >= switch)
            )
            if until is not None:
                cand_all = cand_all.filter(pl.col("started_at") < until)
            if cand_all.height == 0:
                continue
            live = cand_all["started_at"].max() - switch
            d = look_days(live // DAY, closed=until is not None)
            # whole days only: not the part-day of the agent's first runs
            whole = min(HISTORY_DAYS, (switch - agent_runs["started_at"].min()) // DAY)
            before = agent_runs.filter(
                pl.col("started_at").is_between(switch - whole * DAY, switch, closed="left")
            )
            base = before.filter(
                (pl.col("agent_version") == previous) & (pl.col("started_at") >= previous_at)
            )
            cand = cand_all.filter(pl.col("started_at") < switch + d * DAY)
            common = {"agent_id": agent_id, "baseline_version": previous, "candidate_version": current,
                      "switched_at": switch, "window_hours": 24.0 * d, "n_baseline": base.height,
                      "n_candidate": cand.height if d else cand_all.height}  # fmt: skip
            waiting = None
            if d < 2:  # under a day, or before the first look
                waiting = (f"first verdict after {LOOK_DAYS[0]} days of {current} (has "
                           f"{live.total_seconds() / 86400:.1f}); no single day decides")  # fmt: skip
                out += _waiting(common, waiting, (live // DAY, LOOK_DAYS[0], f"days of {current}"))
                continue
            if base.height < MIN_RUNS or cand.height < MIN_RUNS:
                out += _waiting(common, f"too few runs (needs {MIN_RUNS} each side)",
                                (min(base.height, cand.height), MIN_RUNS, "runs each side"))  # fmt: skip
                continue
            past = daily_values(before, switch, -HISTORY_DAYS)
            if past.height - past["agent_version"].n_unique() < MIN_HISTORY_DAYS - 1:
                has = past["day"].n_unique()
                out += _waiting(common, f"needs {MIN_HISTORY_DAYS} days before the switch to know how the agent's "
                                        f"days vary, has {has}", (has, MIN_HISTORY_DAYS, "days before the switch"))  # fmt: skip
                continue
            after = daily_values(cand, switch, d)
            out += [_compare(common, metric, past, after, previous, d, switch) for metric in METRICS]
    judge_family(out)
    return out


def _waiting(common: dict, why: str, waits: tuple | None = None, metrics=METRICS) -> list[VersionComparison]:
    return [VersionComparison(**common, metric=metric, baseline_value=math.nan, candidate_value=math.nan,
                              effect=math.nan, ci_low=math.nan, ci_high=math.nan, p_value=math.nan,
                              p_adjusted=math.nan, verdict="inconclusive", test=why, waiting=waits)
            for metric in metrics]  # fmt: skip


def _compare(common: dict, metric: str, past, after, previous: str, d: int, switch) -> VersionComparison:
    """One metric of one comparison: the day test, its effect on the metric's scale and the note
    (`test`) that says how it was judged."""
    import polars as pl

    mine = past.filter(pl.col("agent_version") == previous)
    mine, after = mine.filter(pl.col(metric).is_not_null()), after.filter(pl.col(metric).is_not_null())
    base, cand = mine[metric].to_numpy().astype(float), after[metric].to_numpy().astype(float)
    if metric == "cost_per_run_usd" and min(mine["priced"].sum(), after["priced"].sum()) < MIN_RUNS:
        return _waiting(common, f"too few priced runs (needs {MIN_RUNS} each side)", metrics=[metric])[0]
    residuals, df = within_version(past, metric)
    result = day_test(
        base, cand, residuals, df, ALPHA / LOOKS, mine["day"].to_numpy(), after["day"].to_numpy()
    )
    half = sps.t.ppf(0.975, result.df) * result.se
    ratio = metric != "success_rate"
    scale = np.expm1 if ratio else (lambda x: x)
    # what the comparison could see: the smallest change found 80% of the time at this look's alpha
    mde = (sps.t.isf(ALPHA / LOOKS / 2, result.df) + sps.norm.isf(0.2)) * result.se
    shown = f"{np.expm1(mde):.0%}" if ratio else f"{100 * mde:.1f} points"
    test = (f"daily values: {d} days after the switch against {base.size} before, t-test with AR(1) day noise "
            f"from {df + past['agent_version'].n_unique()} days; detectable at 80% power: {shown}")  # fmt: skip
    if result.day:
        offsets = np.r_[mine["day"].to_numpy(), after["day"].to_numpy()]
        first, last = (switch + int(offsets[i]) * DAY for i in (result.day[0], result.day[-1]))
        when = f"{first:%Y-%m-%d %H:%M}" + (f" to {last + DAY:%Y-%m-%d %H:%M}" if len(result.day) > 1 else "")
        left = float(scale(result.without_day))
        shown_left = f"{left:+.0%}" if ratio else f"{100 * left:+.1f} points"
        if result.decides:
            test += f"; one day decides: {when} (without it {shown_left}, not significant)"
        elif abs(result.without_day) < abs(result.effect) / 2:
            test += f"; most of the effect is one day's: {when} (without it {shown_left})"
    base_value, cand_value = float(np.nanmean(base)), float(np.nanmean(cand))
    return VersionComparison(
        **common, metric=metric, baseline_value=float(np.exp(base_value)) if ratio else base_value,
        candidate_value=float(np.exp(cand_value)) if ratio else cand_value, effect=float(scale(result.effect)),
        ci_low=float(scale(result.effect - half)), ci_high=float(scale(result.effect + half)),
        p_value=result.p_value, p_adjusted=math.nan, verdict="inconclusive", test=test,
    )  # fmt: skip


ALPHA = 0.05


def judge_family(comparisons: list[VersionComparison], alpha: float = ALPHA, min_effect: float = 0.02,
                 min_relative_change: float = 0.10) -> None:  # fmt: skip
    """Holm over every test of every comparison at once: the family is what one refresh reports
    (and the check and the alerts act on), so that 8 agents x 3 metrics do not give a false alarm
    on most refreshes, as 24 separate tests at 5% would; each at alpha / LOOKS, the share of
    alpha of one of a deployment's looks. A result that one day decides is inconclusive."""
    tested = [c for c in comparisons if not math.isnan(c.p_value)]
    for c, p_adj in zip(tested, holm([c.p_value for c in tested]), strict=True):
        c.p_adjusted = p_adj
        rate = c.metric == "success_rate"
        c.verdict = verdict(c.effect, c.ci_low, c.ci_high, p_adj, alpha / LOOKS,
                            min_effect if rate else min_relative_change, rate)  # fmt: skip
        if "one day decides" in c.test and c.verdict in ("regressed", "improved"):
            c.verdict = "inconclusive"
