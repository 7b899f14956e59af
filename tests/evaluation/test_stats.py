"""The statistics against known answers, and the detector's error rates and power by simulation.

Simulated suites: each case has its own difficulty p_i ~ Beta(2, 2) (the issue's hard case: cases
from near-certain to near-hopeless, so that the two versions' results are correlated by case as
real benchmarks are), each run is a Bernoulli draw (repeats are within-case noise), and clustered
suites share difficulty and the candidate's effect within a topic. Seeds are fixed: the rates
printed (`pytest -s`) are the same on every run, and they are docs/benchmarks.md's.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import special
from scipy import stats as sps
from scipy.integrate import quad
from scipy.optimize import brentq

from agentmon_pipeline.evaluation import stats
from agentmon_pipeline.evaluation.compare import comparisons_table
from agentmon_pipeline.evaluation.evaluators import BUILTIN
from agentmon_pipeline.evaluation.regression import RegressionDetector
from agentmon_pipeline.evaluation.suite import EvaluatorSpec, RegressionPolicy

EXACT = [EvaluatorSpec("exact_match", BUILTIN["exact_match"], 1.0)]
F1 = [EvaluatorSpec("token_f1", BUILTIN["token_f1"], None)]


def test_mcnemar_exact_matches_the_binomial_on_discordant_pairs():
    # 10 cases only the baseline passes, 2 only the candidate: 2 * P(X <= 2), X ~ Bin(12, 1/2)
    base = np.array([True] * 10 + [False] * 2 + [True] * 30)
    cand = np.array([False] * 10 + [True] * 2 + [True] * 30)
    assert stats.mcnemar_exact(base, cand) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert stats.mcnemar_exact(base, base) == 1.0


def test_mcnemar_mid_p_halves_the_observed_split():
    # 10 against 2 discordant pairs: 2 * (P(X <= 1) + P(X = 2) / 2), X ~ Bin(12, 1/2)
    base = np.array([True] * 10 + [False] * 2 + [True] * 30)
    cand = np.array([False] * 10 + [True] * 2 + [True] * 30)
    assert stats.mcnemar_mid_p(base, cand) == pytest.approx(2 * (1 + 12 + 66 / 2) / 4096)
    assert stats.mcnemar_mid_p(base, cand) < stats.mcnemar_exact(base, cand)
    assert stats.mcnemar_mid_p(base, base) == 1.0
    assert stats.mcnemar_mid_p(cand, base) == stats.mcnemar_mid_p(base, cand)  # two-sided
    # an even split is no evidence at all
    assert stats.mcnemar_mid_p(np.array([True, False]), np.array([False, True])) == 1.0


def test_cluster_robust_standard_error_by_hand():
    d = np.array([1.0, 1.0, -1.0, 0.0, 0.0, 1.0])
    plain = stats.mean_difference(d)
    assert (plain.effect, plain.units, plain.df) == (pytest.approx(1 / 3), 6, 5)
    assert plain.se == pytest.approx(d.std(ddof=1) / np.sqrt(6))
    # clusters {0, 1}, {2, 3}, {4, 5}: residual sums 4/3, -5/3, 1/3; SE^2 = 3/2 * (16 + 25 + 1)/9 / 36
    robust = stats.mean_difference(d, np.array([0, 0, 1, 1, 2, 2]))
    assert (robust.units, robust.df) == (3, 2)
    assert robust.se == pytest.approx(np.sqrt(1.5 * 42 / 9 / 36))
    # every case its own cluster: the per-case SE
    assert stats.mean_difference(d, np.arange(6)).se == pytest.approx(plain.se)
    assert stats.paired_t_p(robust) == pytest.approx(2 * sps.t.sf((1 / 3) / robust.se, 2))
    low, high = stats.t_interval(robust)
    assert high - low == pytest.approx(2 * sps.t.ppf(0.975, 2) * robust.se)
    # every case moved by the same amount: as much evidence as the signs of that many cases give
    assert stats.paired_t_p(stats.mean_difference(np.full(2, -1.0))) == 0.5
    assert stats.paired_t_p(stats.mean_difference(np.full(12, -0.1))) == pytest.approx(2 / 2**12)
    assert stats.paired_t_p(stats.mean_difference(np.zeros(12))) == 1.0


def test_the_minimum_detectable_effect_formula():
    """MDE = (t_{1-a/2,df} + t_{0.8,df}) SE; a 0/1 metric with no discordant case is not told it
    could have seen a change of zero (the floor k^2 / (N + k^2)); cases_needed inverts the MDE."""
    k = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert stats.detectable_multiplier(0.05) == pytest.approx(k)  # 1.96 + 0.84
    assert stats.detectable_multiplier(0.05, 10) == pytest.approx(sps.t.ppf(0.975, 10) + sps.t.ppf(0.8, 10))
    design = stats.Design(case_variance=0.4)
    assert design.mde(400, 0.05) == pytest.approx(stats.detectable_multiplier(0.05, 399) * np.sqrt(0.4 / 400))
    assert design.power(design.mde(400, 0.05), 400, 0.05) == pytest.approx(0.80, abs=0.005)
    needed = design.cases_needed(0.10, 0.05)
    assert design.mde(needed, 0.05) <= 0.10 < design.mde(needed - 1, 0.05)
    nothing_changed = stats.Design(case_variance=0.0, runs_per_case=1.0)
    k399 = stats.detectable_multiplier(0.05, 399)
    assert nothing_changed.mde(400, 0.05) == pytest.approx(k399**2 / (400 + k399**2))  # about 0.019
    # repeats divide only the within-case part of the variance
    measured = stats.Design(case_variance=0.3, repeats=2, within_variance=0.4)  # between 0.1, within 0.4 / 2
    assert measured.with_repeats(4).case_variance == pytest.approx(0.1 + 0.4 / 4)
    with pytest.raises(ValueError, match="one run per case"):
        stats.Design(case_variance=0.3).with_repeats(2)


def test_every_verdict_carries_its_minimum_detectable_effect():
    """Inconclusive and unchanged verdicts say what size of change the suite could have found, in
    the effect's units, at the level Holm asks of one metric alone (alpha / m)."""
    rng = np.random.default_rng(8)
    frame, _ = simulated(rng, 60, 0.0)
    [alone] = DETECTOR.compare(frame, EXACT, "base", "cand")
    assert alone.verdict == "inconclusive" and 0.2 < alone.mde < 0.6
    assert alone.as_dict()["mde"] == alone.mde and "design" not in alone.as_dict()
    # judged with latency too (m = 2): each metric alone is tested at 0.025, so the MDE grows
    latency = latency_results(rng, 60, 1, np.ones_like)
    both = pl.concat([frame, latency.with_columns(pl.col("version").replace({"b": "base", "c": "cand"}))],
                     how="vertical_relaxed")  # fmt: skip
    rate, p95 = DETECTOR.compare(both, [*EXACT, *LATENCY], "base", "cand")
    assert rate.mde == pytest.approx(alone.mde * stats.detectable_multiplier(0.025, 59)
                                     / stats.detectable_multiplier(0.05, 59))  # fmt: skip
    assert p95.relative and 0.05 < p95.mde < 1  # a uniform slowdown, relative
    assert "detectable (80%)" in comparisons_table([rate, p95]).splitlines()[0]


def test_holm_adjustment():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(
    ("effect", "ci", "p", "higher", "expected"),
    [
        (-0.10, (-0.15, -0.05), 0.001, True, "regressed"),
        (-0.01, (-0.015, -0.005), 0.001, True, "unchanged"),  # significant, smaller than min_effect
        (+0.10, (0.05, 0.15), 0.001, True, "improved"),
        (0.00, (-0.01, 0.01), 0.8, True, "unchanged"),  # the CI excludes a drop of 0.02
        (-0.01, (-0.08, 0.06), 0.6, True, "inconclusive"),  # the CI admits a drop of 0.02
        (+0.30, (0.2, 0.4), 0.001, False, "regressed"),  # lower is better: an increase is worse
    ],
)
def test_verdicts(effect, ci, p, higher, expected):
    assert stats.verdict(effect, ci[0], ci[1], p, 0.05, 0.02, higher) == expected


def test_a_sub_millisecond_latency_difference_is_neither_regression_nor_improvement():
    rng = np.random.default_rng(9)
    n = 200
    base = rng.lognormal(-5, 0.1, n)  # about 7 microseconds: an agent that does nothing
    frame = pl.DataFrame({
        "case_id": np.tile(np.arange(n).astype(str), 2), "version": ["b"] * n + ["c"] * n, "repeat": 0,
        "evaluator": "latency_ms", "score": np.r_[base, base * 1.5], "passed": None,
    }, schema_overrides={"passed": pl.Boolean})  # fmt: skip
    spec = [EvaluatorSpec("latency_ms", BUILTIN["latency_ms"], None)]
    [c] = RegressionDetector().compare(frame, spec, "b", "c")
    assert c.effect == pytest.approx(0.5) and c.p_adjusted < 0.001 and c.verdict == "unchanged"
    [c] = RegressionDetector().compare(frame.with_columns(pl.col("score") * 1000), spec, "b", "c")
    assert c.verdict == "regressed"  # the same shape at 7 ms is a regression
    faster = frame.with_columns(
        pl.when(pl.col("version") == "c").then(pl.col("score") / 2.25).otherwise(pl.col("score"))
    )
    [c] = RegressionDetector().compare(faster, spec, "b", "c")
    assert c.effect < -0.2 and c.p_adjusted < 0.001 and c.verdict == "unchanged"  # nor an improvement
    [c] = RegressionDetector().compare(faster.with_columns(pl.col("score") * 1000), spec, "b", "c")
    assert c.verdict == "improved"


def results_of(base_passed: np.ndarray, cand_passed: np.ndarray) -> pl.DataFrame:
    """evals.results rows of an exact_match suite from each version's pass/fail (repeats x cases),
    built from whole arrays (thousands of suites per test)."""
    repeats, n_cases = base_passed.shape
    passed = np.concatenate([base_passed.ravel(), cand_passed.ravel()])
    return two_versions(
        ("base", "cand"), n_cases, repeats, "exact_match", passed.astype(float), pl.Series(passed)
    )


def two_versions(versions: tuple[str, str], n_cases: int, repeats: int, evaluator: str, score: np.ndarray,
                 passed: pl.Series) -> pl.DataFrame:  # fmt: skip
    """evals.results rows of two versions, `score` and `passed` given version by version, repeat
    by repeat, case by case."""
    n = repeats * n_cases
    return pl.DataFrame({
        "case_id": pl.Series(np.tile(np.arange(n_cases), 2 * repeats)).cast(pl.String),
        "version": pl.Series(np.repeat([False, True], n)).replace_strict({False: versions[0], True: versions[1]}),
        "repeat": np.tile(np.repeat(np.arange(repeats), n_cases), 2), "evaluator": pl.repeat(evaluator, 2 * n, eager=True),
        "score": score, "passed": passed,
    })  # fmt: skip


def simulated(rng, n_cases: int, drop: float, repeats: int = 1) -> tuple[pl.DataFrame, np.ndarray]:
    """A suite whose cases have their own pass probability p_i ~ Beta(2, 2) (so the two
    versions' results are correlated by case, as real benchmarks are); the candidate's is
    max(p_i - drop, 0). Each run is a Bernoulli draw: repeats are within-case noise. Returns the
    results and each case's difference in pass/fail (the runs averaged), for the ideal test."""
    p = rng.beta(2, 2, n_cases)
    base = rng.random((repeats, n_cases)) < p
    cand = rng.random((repeats, n_cases)) < np.clip(p - drop, 0, 1)
    return results_of(base, cand), cand.mean(axis=0) - base.mean(axis=0)


def difference_moments(drop: float, repeats: int = 1) -> tuple[float, float]:
    """The true mean and variance of a case's difference when p ~ Beta(2, 2) and q = max(p - drop, 0):
    mean -E[min(p, drop)]; variance (E[p(1-p)] + E[q(1-q)]) / repeats + Var(q - p)."""
    beta22, beta32 = sps.beta(2, 2), sps.beta(3, 2)
    shift = 0.5 * beta32.cdf(drop) + drop * beta22.sf(drop)  # E[min(p, drop)]: E[p; p < drop] = E[p] F_{3,2}
    second = quad(lambda p: min(p, drop) ** 2 * beta22.pdf(p), 0, 1, points=[drop])[0]
    within = quad(lambda p: (p * (1 - p) + max(p - drop, 0) * (1 - max(p - drop, 0))) * beta22.pdf(p), 0, 1,
                  points=[drop])[0]  # fmt: skip
    return -shift, within / repeats + second - shift**2


def drop_for_mean(effect: float) -> float:
    """The per-case drop whose mean over Beta(2, 2) cases (some clipped at 0) is `effect`."""
    return brentq(lambda d: -difference_moments(d)[0] - effect, 1e-6, 1.0)


DETECTOR = RegressionDetector(RegressionPolicy(alpha=0.05, min_effect=0.02), n_boot=200)


def run_verdicts(seed: int, sims: int, n_cases: int, drop: float, repeats: int = 1) -> dict:
    """Verdicts of `sims` simulated suites, the MDEs they reported, and the ideal paired z-test's
    decisions on the same suites (it knows the true variance of a case's difference)."""
    rng = np.random.default_rng(seed)
    mean, variance = difference_moments(drop, repeats)
    z = sps.norm.ppf(0.975)
    verdicts, mdes, ideal = [], [], []
    for _ in range(sims):
        frame, diffs = simulated(rng, n_cases, drop, repeats)
        [c] = DETECTOR.compare(frame, EXACT, "base", "cand")
        verdicts.append(c.verdict)
        mdes.append(c.mde)
        ideal.append(abs(diffs.mean()) / np.sqrt(variance / n_cases) > z and diffs.mean() <= -0.02)
    return {"verdicts": np.array(verdicts), "mde": np.array(mdes), "ideal": np.mean(ideal), "test": c.test,
            "ideal_formula": sps.norm.cdf(-mean / np.sqrt(variance / n_cases) - z)}  # fmt: skip


def false_verdicts(verdicts: np.ndarray) -> float:
    return float(np.isin(verdicts, ["regressed", "improved"]).mean())


def test_one_run_per_case_is_as_powerful_as_the_ideal_paired_z_test():
    """The issue's goal: a 10-point drop on 400 cases of Beta(2, 2) difficulty, one run per case.
    Mid-p McNemar finds it within 0.03 of the ideal paired z-test (same suites, same alpha); the
    exact McNemar it replaced loses power to its discreteness. A/A: false verdicts (regressed or
    improved) at most 0.06."""
    drop = run_verdicts(seed=2, sims=1000, n_cases=400, drop=0.10)
    power = float(np.mean(drop["verdicts"] == "regressed"))
    rng = np.random.default_rng(2)  # the same suites again: the exact McNemar test's decisions on them
    exact = 0
    for _ in range(1000):
        frame, _diffs = simulated(rng, 400, 0.10)
        base, cand = (frame.filter(pl.col("version") == v)["passed"].to_numpy() for v in ("base", "cand"))
        exact += stats.mcnemar_exact(base, cand) < 0.05 and cand.mean() - base.mean() <= -0.02
    aa = run_verdicts(seed=1, sims=2000, n_cases=400, drop=0.0)
    print(
        f"\none run per case, 400 cases, Beta(2,2), 10-point drop, 1000 suites: {drop['test']} "
        f"{power:.3f}, ideal paired z-test {drop['ideal']:.3f} on the same suites "
        f"({drop['ideal_formula']:.3f} by formula), exact McNemar {exact / 1000:.3f}; "
        f"A/A false verdicts {false_verdicts(aa['verdicts']):.4f} of 2000 "
        f"(inconclusive {np.mean(aa['verdicts'] == 'inconclusive'):.2f}, median MDE {np.median(aa['mde']):.4f})"
    )
    assert drop["test"] == "mcnemar_mid_p"
    assert power >= drop["ideal"] - 0.03
    assert false_verdicts(aa["verdicts"]) <= 0.06
    assert np.isfinite(aa["mde"]).all()  # every verdict, inconclusive ones too, says what it could have seen


def test_two_runs_per_case_buy_power():
    """Repeats are within-case samples: the case's mean over its runs is the unit (paired t-test),
    so 2 runs per case find the 10-point drop on 400 cases at least 95% of the time, and A/A
    false verdicts stay at most 0.06."""
    drop = run_verdicts(seed=4, sims=500, n_cases=400, drop=0.10, repeats=2)
    aa = run_verdicts(seed=3, sims=2000, n_cases=400, drop=0.0, repeats=2)
    power = float(np.mean(drop["verdicts"] == "regressed"))
    print(
        f"\n2 runs per case, 400 cases, Beta(2,2): {drop['test']} power at a 10-point drop {power:.3f} "
        f"(ideal paired z-test {drop['ideal']:.3f}) of 500; A/A false verdicts "
        f"{false_verdicts(aa['verdicts']):.4f} of 2000, median MDE {np.median(aa['mde']):.4f}"
    )
    assert drop["test"] == "paired_t"
    assert power >= 0.95 and false_verdicts(aa["verdicts"]) <= 0.06


def test_a_change_of_the_mde_is_found_80_percent_of_the_time():
    """The MDE a verdict carries, (t_{1-a/2} + t_{0.8}) x SE, checked: the median MDE that A/A
    comparisons of 400 Beta(2, 2) cases report, planted as a drop, is regressed about 80% of the
    time, with one run per case and with two. `agentmon eval power`'s planner gives the same MDE."""
    measured = {}
    for repeats, seed in ((1, 31), (2, 33)):
        mde = float(
            np.median(run_verdicts(seed=seed, sims=200, n_cases=400, drop=0.0, repeats=repeats)["mde"])
        )
        found = run_verdicts(seed=seed + 1, sims=1000, n_cases=400, drop=drop_for_mean(mde), repeats=repeats)
        planned = stats.pass_rate_mde(
            400, 0.5, 0.05, repeats, difficulty_sd=np.sqrt(0.05)
        )  # sd of Beta(2, 2)
        measured[repeats] = (mde, float(np.mean(found["verdicts"] == "regressed")), planned)
    print("\n" + "; ".join(f"{r} run(s) per case: MDE {m:.4f} (planner {p:.4f}), found {f:.3f} of 1000"
                           for r, (m, f, p) in measured.items()))  # fmt: skip
    for mde, found, planned in measured.values():
        assert 0.75 <= found <= 0.85
        assert planned == pytest.approx(mde, rel=0.05)


def clustered_suite(rng, clusters: int, size: int, repeats: int, tau: float) -> tuple[pl.DataFrame, dict]:
    """Cases in clusters (topics): a case's log-odds of passing are its own difficulty (Beta(2, 2)
    on the probability scale) plus its cluster's (sd 0.8), and the candidate adds a cluster effect
    of mean zero (sd `tau`): better on some topics, worse on others, no better or worse on a new
    draw of topics. The per-case SE misses that the cases of a topic move together."""
    cluster = np.repeat(np.arange(clusters), size)
    logit = special.logit(rng.beta(2, 2, clusters * size)) + rng.normal(0, 0.8, clusters)[cluster]
    cand_logit = logit + rng.normal(0, tau, clusters)[cluster]
    base = rng.random((repeats, cluster.size)) < special.expit(logit)
    cand = rng.random((repeats, cluster.size)) < special.expit(cand_logit)
    mapping = dict(zip(np.arange(cluster.size).astype(str), (f"topic-{c}" for c in cluster), strict=True))
    return results_of(base, cand), mapping


def test_clustered_cases_need_cluster_robust_errors():
    """Miller (2024): cases that share a cluster share errors. 20 topics of 20 cases whose
    candidate effect varies by topic with mean zero: judged per case, A/A false verdicts inflate
    well past alpha; with the dataset's clusters (cluster-robust SE, G - 1 df) they hold at 0.06,
    with one run per case and with two."""
    rates = {}
    for repeats, sims, seed in ((1, 1000, 41), (2, 1000, 42)):
        rng = np.random.default_rng(seed)
        per_case, clustered, mdes = [], [], []
        for _ in range(sims):
            frame, mapping = clustered_suite(rng, 20, 20, repeats, tau=0.6)
            [plain] = DETECTOR.compare(frame, EXACT, "base", "cand")
            [robust] = DETECTOR.compare(frame, EXACT, "base", "cand", clusters=mapping)
            per_case.append(plain.verdict)
            clustered.append(robust.verdict)
            mdes.append((plain.mde, robust.mde))
        assert robust.test == "paired_t_clustered" and robust.clusters == 20
        rates[repeats] = (false_verdicts(np.array(per_case)), false_verdicts(np.array(clustered)),
                          *np.median(np.array(mdes), axis=0))  # fmt: skip
    print("\nclustered A/A, 20 topics x 20 cases: " + "; ".join(
        f"{r} run(s) per case: per case {a:.3f}, clustered {b:.3f} (median MDE {m1:.3f} per case, {m2:.3f} clustered)"
        for r, (a, b, m1, m2) in rates.items()))  # fmt: skip
    for per_case_rate, clustered_rate, _, _ in rates.values():
        assert per_case_rate >= 0.10 and clustered_rate <= 0.06


def test_continuous_scores_false_alarms_and_ci_coverage():
    """token_f1-like scores: the paired t-test's false-alarm rate holds, and its 95% CI covers the
    true difference in about 95% of simulations."""
    rng = np.random.default_rng(5)
    detector = RegressionDetector()
    alarms = covered = 0
    n_sims, n, shift = 300, 200, -0.03
    for _ in range(n_sims):
        quality = rng.beta(5, 2, n)
        base = np.clip(quality + rng.normal(0, 0.05, n), 0, 1)
        cand = np.clip(quality + rng.normal(0, 0.05, n), 0, 1)
        for shifted, label in ((cand, "aa"), (cand + shift, "shift")):
            frame = pl.DataFrame({
                "case_id": np.tile(np.arange(n).astype(str), 2), "version": ["b"] * n + ["c"] * n,
                "repeat": 0, "evaluator": "token_f1", "score": np.r_[base, shifted], "passed": None,
            }, schema_overrides={"passed": pl.Boolean})  # fmt: skip
            [c] = detector.compare(frame, F1, "b", "c")
            if label == "aa":
                alarms += c.verdict == "regressed"
            else:
                covered += c.ci_low <= shift <= c.ci_high  # the true mean difference
    print(
        f"\ncontinuous scores: A/A false-alarm rate {alarms / n_sims:.3f}, CI coverage {covered / n_sims:.3f}"
    )
    assert alarms / n_sims <= 0.07 and covered / n_sims >= 0.91


LATENCY = [EvaluatorSpec("latency_ms", BUILTIN["latency_ms"], None)]


def latency_results(rng, cases: int, repeats: int, candidate_factor) -> pl.DataFrame:
    """Wall-clock latency as benchmarks see it: each case has its own cost (lognormal, sd 0.8 in
    logs), each call adds its own noise (lognormal, sd 0.3), repeats of a case share its cost.
    `candidate_factor(case_cost) -> factor` makes the candidate's calls slower or faster."""
    case_cost = rng.lognormal(6.0, 0.8, cases)
    values = []
    for factor in (np.ones(cases), candidate_factor(case_cost)):
        noise = rng.lognormal(0.0, 0.3, (cases, repeats))
        values.append(((case_cost * factor)[:, None] * noise).T.ravel())  # repeat by repeat
    return two_versions(("b", "c"), cases, repeats, "latency_ms", np.concatenate(values),
                        pl.Series([None] * (2 * cases * repeats), dtype=pl.Boolean))  # fmt: skip


def latency_verdicts(seed: int, runs: int, cases: int, repeats: int, factor) -> list[str]:
    rng = np.random.default_rng(seed)
    detector = RegressionDetector(n_boot=200)
    return [detector.compare(latency_results(rng, cases, repeats, factor), LATENCY, "b", "c")[0].verdict
            for _ in range(runs)]  # fmt: skip


def test_benchmark_latency_is_judged_per_case_and_its_direction_agrees_with_its_effect():
    """The case is the unit (repeats are not independent samples), and a verdict's direction must
    agree with its effect. Per-case effects and 3 repeats: A/A false verdicts at most 0.06; a true
    +20% slowdown never 'improved' (and found in about two thirds of 60-case suites); a faster typical case with a heavier tail (p95 up)
    neither 'regressed' nor 'improved'."""
    same = latency_verdicts(21, 200, 60, 3, lambda cost: np.ones_like(cost))
    false_rate = np.mean([v in ("regressed", "improved") for v in same])
    slower = latency_verdicts(22, 100, 60, 3, lambda cost: np.full_like(cost, 1.2))
    tail = latency_verdicts(23, 100, 60, 3, lambda cost: np.where(cost > np.quantile(cost, 0.9), 2.5, 0.85))
    print(f"latency A/A false verdicts {false_rate:.3f}; +20%: regressed {slower.count('regressed') / 100:.2f}, "
          f"improved {slower.count('improved')}; faster median, heavier tail: {sorted(set(tail))}")  # fmt: skip
    assert false_rate <= 0.06
    # found 69% of the time on 60 cases: the p95 of 60 per-case medians is a noisy estimate of a
    # +20% change against a 10% minimum (more cases or repeats buy power)
    assert "improved" not in slower and slower.count("regressed") / 100 >= 0.6
    assert "regressed" not in tail and "improved" not in tail


def test_no_interval_is_narrower_than_the_rule_of_three():
    """40 cases that both versions answered alike: the bootstrap interval of their differences has
    width 0, and called the suite `unchanged` on a 2-point drop it could not see (its MDE is 22
    points). The interval is at least +-3/N: inconclusive at 40 cases, unchanged at 400."""
    for n, expected in ((40, "inconclusive"), (400, "unchanged")):
        low, high = stats.bootstrap_mean_ci(np.zeros(n))
        assert (low, high) == pytest.approx((-3 / n, 3 / n))
        assert stats.verdict(0.0, low, high, 1.0, 0.05, 0.02, higher_is_better=True) == expected
    # one case of a latency ratio: no interval at all worth the name
    low, high = stats.p95_ratio_ci(np.array([[100.0]]), np.array([[44.3]]))
    assert high - low >= 6.0
