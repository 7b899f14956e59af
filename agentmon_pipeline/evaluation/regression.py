"""Candidate against baseline, metric by metric, paired by case (tests in `stats`).

Which metrics an evaluator gives:
- scores that are all 0 or 1 (exact_match, error, ...): `<evaluator>.rate`, absolute effect;
- other quality scores (token_f1, rouge_l, ...): `<evaluator>.mean`, absolute effect, and
  `<evaluator>.pass_rate` when the evaluator has a threshold;
- `latency_ms`: `latency_ms.p95` of the per-case medians, effect = p95 ratio - 1, tested per case
  (Wilcoxon signed-rank on the per-case log ratios); a verdict needs the test's direction to agree;
- other measures (tokens, cost_usd, custom lower-is-better measures): `<evaluator>.mean`, effect =
  ratio of means - 1.
Absolute effects are judged against `min_effect`, relative ones against `min_relative_change`.
Every comparison carries its minimum detectable effect at 80% power (`mde`, in the effect's
units, at the level Holm asks of one metric alone) and the `Design` it came from, which gives the
MDE and the cases needed at other suite sizes and repeats (`agentmon eval power`).

With `clusters` (case id -> cluster, from the dataset's `cluster` field), rates and scores are
tested with the cluster as the unit (cluster-robust SE, see `stats`); latency, tokens and cost
stay per case.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import polars as pl

from agentmon_pipeline.evaluation import stats
from agentmon_pipeline.evaluation.suite import EvaluatorSpec, RegressionPolicy


@dataclass
class MetricComparison:
    suite: str
    baseline: str
    candidate: str
    metric: str
    evaluator: str
    statistic: str
    test: str
    higher_is_better: bool
    baseline_value: float
    candidate_value: float
    n: int
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float = math.nan
    verdict: str = "inconclusive"
    relative: bool = False
    mde: float = math.nan  # minimum detectable effect at 80% power, in the effect's units
    clusters: int | None = None  # independent clusters, when the dataset has them and the test used them
    design: stats.Design | None = field(default=None, repr=False, compare=False)  # not stored

    def as_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "design":
                out[f.name] = None if isinstance(value, float) and not math.isfinite(value) else value
        return out


def _seed(*parts: str) -> int:
    return zlib.crc32("|".join(parts).encode())


def _paired(
    frame: pl.DataFrame, column: str, baseline: str, candidate: str
) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """The cases both versions have a value for (sorted), and each version's cases x repeats
    matrix of `column` (NaN where missing; duplicate runs of one repeat averaged)."""
    valid = frame.filter(
        pl.col(column).is_not_null() & pl.col("version").is_in([baseline, candidate])
    ).select(
        (pl.col("case_id").rank("dense") - 1).cast(pl.Int64).alias("case"),
        (pl.col("version") == candidate).cast(pl.Int64).alias("side"),
        (pl.col("repeat").rank("dense").over("version") - 1).cast(pl.Int64).alias("col"),
        pl.col(column).cast(pl.Float64).alias("value"),
        pl.col("case_id"),
    )
    if valid.is_empty():
        return pl.Series("case_id", [], dtype=pl.String), np.empty((0, 1)), np.empty((0, 1))
    case, side, col = (valid[c].to_numpy() for c in ("case", "side", "col"))
    cases, width = int(case.max()) + 1, int(col.max()) + 1
    cell = (side * cases + case) * width + col
    size = 2 * cases * width
    counts = np.bincount(cell, minlength=size).reshape(2, cases, width)
    sums = np.bincount(cell, weights=valid["value"].to_numpy(), minlength=size).reshape(2, cases, width)
    with np.errstate(invalid="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    both = (counts.sum(axis=2) > 0).all(axis=0)
    widths = [int(col[side == s].max()) + 1 if np.any(side == s) else 1 for s in (0, 1)]
    ids = valid["case_id"].unique().sort().filter(pl.Series(both))
    return ids, means[0, both, : widths[0]], means[1, both, : widths[1]]


def _cluster_codes(ids: pl.Series, clusters: Mapping[str, str] | None) -> np.ndarray | None:
    """Integer codes of the cases' clusters (a case without one is a cluster of its own); None when
    no two of these cases share a cluster."""
    if not clusters:
        return None
    named = ids.replace_strict(dict(clusters), default=None, return_dtype=pl.String)
    labels = pl.select(pl.when(named.is_null()).then("\0" + ids).otherwise("=" + named)).to_series()
    codes = labels.rank("dense").cast(pl.Int64).to_numpy() - 1
    return codes if codes.size and codes.max() + 1 < ids.len() else None


def _within_variance(base: np.ndarray, cand: np.ndarray) -> float:
    """What one run of each version adds to the variance of a case's difference: the mean over
    cases of the repeats' sample variances, summed over both versions (NaN with one run)."""
    if base.shape[1] < 2 or cand.shape[1] < 2:
        return math.nan
    with warnings.catch_warnings():  # a case with one run left has no variance of its own: skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        variances = np.nanvar(base, axis=1, ddof=1) + np.nanvar(cand, axis=1, ddof=1)
    variances = variances[np.isfinite(variances)]
    return float(variances.mean()) if variances.size else math.nan


def _rate_or_mean(
    name: str,
    statistic: str,
    base: np.ndarray,
    cand: np.ndarray,
    binary: bool,
    ctx: dict,
    n_boot: int = stats.N_BOOT,
    clusters: np.ndarray | None = None,
) -> MetricComparison:
    """Absolute difference of per-case means (a case's repeats averaged): mid-p McNemar for 0/1
    scores run once per case without clusters, else the paired t-test (cluster-robust SE with
    clusters)."""
    base_case, cand_case = np.nanmean(base, axis=1), np.nanmean(cand, axis=1)
    diffs = cand_case - base_case
    difference = stats.mean_difference(diffs, clusters)
    single = binary and base.shape[1] == 1 and cand.shape[1] == 1
    if single and clusters is None:
        p, test = stats.mcnemar_mid_p(base_case > 0.5, cand_case > 0.5), "mcnemar_mid_p"
        low, high = stats.bootstrap_mean_ci(
            diffs, seed=_seed(ctx["suite"], ctx["candidate"], name, statistic), n_boot=n_boot
        )
    else:
        p, test = stats.paired_t_p(difference), "paired_t" if clusters is None else "paired_t_clustered"
        low, high = stats.t_interval(difference)
    runs = min(np.count_nonzero(~np.isnan(base)), np.count_nonzero(~np.isnan(cand))) / max(len(diffs), 1)
    design = stats.Design.of(difference, runs if binary else None, repeats=runs,
                             within_variance=_within_variance(base, cand))  # fmt: skip
    return MetricComparison(
        metric=f"{name}.{statistic}", evaluator=name, statistic=statistic, test=test,
        baseline_value=float(base_case.mean()) if len(diffs) else math.nan,
        candidate_value=float(cand_case.mean()) if len(diffs) else math.nan,
        n=len(diffs), effect=difference.effect, ci_low=low, ci_high=high, p_value=p,
        clusters=None if clusters is None else difference.units, design=design, **ctx,
    )  # fmt: skip


def _relative(
    name: str, base: np.ndarray, cand: np.ndarray, ctx: dict, latency: bool, n_boot: int = stats.N_BOOT
) -> MetricComparison:
    """Latency: p95 ratio of the per-case medians, Wilcoxon on per-case log ratios. Other measures:
    ratio of means, Wilcoxon on per-case differences."""
    seed = _seed(ctx["suite"], ctx["candidate"], name)
    shift = math.nan
    runs = min(np.count_nonzero(~np.isnan(base)), np.count_nonzero(~np.isnan(cand))) / max(base.shape[0], 1)
    if latency:
        # The case is the unit, paired across versions: each case's repeats give its median, the
        # test is Wilcoxon's signed-rank on the per-case log ratios (a typical case got slower or
        # faster), the effect is the ratio of the p95s of the per-case medians with a paired
        # bootstrap CI over cases. Calls of one case are not independent samples.
        statistic, test = "p95", "wilcoxon_signed_rank_log_ratio"
        with np.errstate(all="ignore"):
            b_case, c_case = np.nanmedian(base, axis=1), np.nanmedian(cand, axis=1)
        ok = np.isfinite(b_case) & np.isfinite(c_case) & (b_case > 0) & (c_case > 0)
        b_case, c_case = b_case[ok], c_case[ok]
        b_value = float(np.percentile(b_case, 95)) if b_case.size else math.nan
        c_value = float(np.percentile(c_case, 95)) if c_case.size else math.nan
        log_ratios = np.log(c_case / b_case)
        p = stats.wilcoxon_p(log_ratios)
        shift = float(np.median(log_ratios)) if log_ratios.size else math.nan
        low, high = stats.p95_ratio_ci(b_case[:, None], c_case[:, None], seed=seed, n_boot=n_boot)
        # the MDE: the uniform slowdown the per-case test finds 80% of the time
        design = stats.Design.of(stats.mean_difference(log_ratios), scale="log", repeats=runs)
        base = b_case[:, None]
    else:
        statistic, test = "mean", "wilcoxon_signed_rank"
        b_value = float(np.nanmean(base)) if base.size else math.nan
        c_value = float(np.nanmean(cand)) if cand.size else math.nan
        diffs = np.nanmean(cand, axis=1) - np.nanmean(base, axis=1)
        p = stats.wilcoxon_p(diffs)
        low, high = stats.mean_ratio_ci(base, cand, seed=seed, n_boot=n_boot)
        scale = abs(b_value) if b_value and math.isfinite(b_value) else math.nan
        design = stats.Design.of(stats.mean_difference(diffs / scale), scale="relative", repeats=runs)
    effect = c_value / b_value - 1 if b_value and not math.isnan(b_value) else math.nan
    comparison = MetricComparison(
        metric=f"{name}.{statistic}", evaluator=name, statistic=statistic, test=test,
        baseline_value=b_value, candidate_value=c_value, n=base.shape[0], effect=effect,
        ci_low=low - 1, ci_high=high - 1, p_value=p, relative=True, design=design, **ctx,
    )  # fmt: skip
    comparison.typical_shift = shift  # not stored: the direction the test saw (median log ratio)
    return comparison


MACHINE_NOTE = "wall-clock latency of one repeat on this machine, confirm with repeats: 3"


def machine_dependent(evaluator: str, repeats: int | None) -> bool:
    """A latency verdict of a suite run once per case measures the machine's load as much as the
    agent: it is stated as such (one rule for the run summary and the UI)."""
    return evaluator == "latency_ms" and (repeats or 1) < 2


class RegressionDetector:
    """Compares a candidate version with the baseline on every evaluator of a suite."""

    def __init__(self, policy: RegressionPolicy | None = None, n_boot: int = stats.N_BOOT):
        self.policy = policy or RegressionPolicy()
        self.n_boot = n_boot  # bootstrap resamples per CI

    def compare(
        self, results: pl.DataFrame, evaluators: list[EvaluatorSpec], baseline: str, candidate: str,
        suite: str = "", clusters: Mapping[str, str] | None = None,
    ) -> list[MetricComparison]:  # fmt: skip
        """`clusters`: case id -> cluster (the dataset's `cluster` field), for rates and scores."""
        out: list[MetricComparison] = []
        for spec in evaluators:
            frame = results.filter(
                (pl.col("evaluator") == spec.name) & pl.col("version").is_in([baseline, candidate])
            )
            ctx = {"suite": suite, "baseline": baseline, "candidate": candidate,
                   "higher_is_better": spec.evaluator.higher_is_better}  # fmt: skip
            cases, base, cand = _paired(frame, "score", baseline, candidate)
            if cases.is_empty():
                continue
            # binary or not is decided on all versions' scores, so every candidate gets the same metrics
            binary = spec.evaluator.binary
            if binary is None:
                scores = results.filter(pl.col("evaluator") == spec.name)["score"].drop_nulls()
                binary = bool(scores.is_in([0.0, 1.0]).all())
            codes = _cluster_codes(cases, clusters)
            if binary:
                out.append(_rate_or_mean(spec.name, "rate", base, cand, True, ctx, self.n_boot, codes))
                continue
            if spec.evaluator.quality:
                out.append(_rate_or_mean(spec.name, "mean", base, cand, False, ctx, self.n_boot, codes))
            else:
                out.append(
                    _relative(spec.name, base, cand, ctx, spec.evaluator.name == "latency_ms", self.n_boot)
                )
            if spec.threshold is not None:
                pass_frame = frame.with_columns(pl.col("passed").cast(pl.Float64))
                cases, pb, pc = _paired(pass_frame, "passed", baseline, candidate)
                if not cases.is_empty():
                    ctx_pass = {**ctx, "higher_is_better": True}
                    out.append(_rate_or_mean(spec.name, "pass_rate", pb, pc, True, ctx_pass, self.n_boot,
                                             _cluster_codes(cases, clusters)))  # fmt: skip
        self._judge(out)
        return out

    def _judge(self, comparisons: list[MetricComparison]) -> None:
        adjusted = stats.holm([c.p_value for c in comparisons])
        # the MDE at the level Holm asks of a metric that changed alone: alpha / m
        alone = self.policy.alpha / max(len(comparisons), 1)
        for c, p_adj in zip(comparisons, adjusted, strict=True):
            c.p_adjusted = p_adj
            c.mde = c.design.mde(c.n, alone) if c.design is not None else math.nan
            threshold = self.policy.min_relative_change if c.relative else self.policy.min_effect
            c.verdict = stats.verdict(
                c.effect, c.ci_low, c.ci_high, p_adj, self.policy.alpha, threshold, c.higher_is_better
            )
            # a latency change must also matter in milliseconds: a significant +/-36% of 7
            # microseconds is machine noise, neither a regression nor an improvement
            tiny = abs(c.candidate_value - c.baseline_value) < self.policy.min_latency_ms
            if c.statistic == "p95" and c.verdict in ("regressed", "improved") and tiny:
                c.verdict = "unchanged"
            # the test and the effect must point the same way: a typical case faster while the p95
            # grew (a heavier tail), or the reverse, is not a verdict either way
            shift = getattr(c, "typical_shift", math.nan)
            if c.verdict in ("regressed", "improved") and not math.isnan(shift) and shift * c.effect <= 0:
                c.verdict = "inconclusive"
