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
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass

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

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _seed(*parts: str) -> int:
    return zlib.crc32("|".join(parts).encode())


def _matrix(frame: pl.DataFrame, column: str, cases: list[str]) -> np.ndarray:
    """cases x repeats of `column` (NaN where missing), rows in the order of `cases`."""
    wide = (
        frame.select("case_id", "repeat", pl.col(column).cast(pl.Float64))
        .pivot(on="repeat", index="case_id", values=column, aggregate_function="mean")
        .join(pl.DataFrame({"case_id": cases}, schema={"case_id": pl.String}), on="case_id", how="right")
    )
    values = wide.drop("case_id").to_numpy().astype(float)
    return values if values.size else np.empty((len(cases), 1))


def _paired(
    frame: pl.DataFrame, column: str, baseline: str, candidate: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The cases both versions have a value for, and their matrices."""
    valid = frame.filter(pl.col(column).is_not_null())
    base_cases = set(valid.filter(pl.col("version") == baseline)["case_id"].to_list())
    cand_cases = set(valid.filter(pl.col("version") == candidate)["case_id"].to_list())
    cases = sorted(base_cases & cand_cases)
    if not cases:
        return cases, np.empty((0, 1)), np.empty((0, 1))
    base = _matrix(valid.filter(pl.col("version") == baseline), column, cases)
    cand = _matrix(valid.filter(pl.col("version") == candidate), column, cases)
    return cases, base, cand


def _rate_or_mean(
    name: str,
    statistic: str,
    base: np.ndarray,
    cand: np.ndarray,
    binary: bool,
    ctx: dict,
    n_boot: int = stats.N_BOOT,
) -> MetricComparison:
    """Absolute difference of per-case means; McNemar when single binary runs, else Wilcoxon."""
    base_case, cand_case = np.nanmean(base, axis=1), np.nanmean(cand, axis=1)
    diffs = cand_case - base_case
    single = binary and base.shape[1] == 1 and cand.shape[1] == 1
    if single:
        p, test = stats.mcnemar_exact(base_case > 0.5, cand_case > 0.5), "mcnemar_exact"
    else:
        p, test = stats.wilcoxon_p(diffs), "wilcoxon_signed_rank"
    low, high = stats.bootstrap_mean_ci(
        diffs, seed=_seed(ctx["suite"], ctx["candidate"], name, statistic), n_boot=n_boot
    )
    return MetricComparison(
        metric=f"{name}.{statistic}", evaluator=name, statistic=statistic, test=test,
        baseline_value=float(base_case.mean()) if len(diffs) else math.nan,
        candidate_value=float(cand_case.mean()) if len(diffs) else math.nan,
        n=len(diffs), effect=float(diffs.mean()) if len(diffs) else math.nan, ci_low=low, ci_high=high,
        p_value=p, **ctx,
    )  # fmt: skip


def _relative(
    name: str, base: np.ndarray, cand: np.ndarray, ctx: dict, latency: bool, n_boot: int = stats.N_BOOT
) -> MetricComparison:
    """Latency: p95 ratio of the per-case medians, Wilcoxon on per-case log ratios. Other measures:
    ratio of means, Wilcoxon on per-case differences."""
    seed = _seed(ctx["suite"], ctx["candidate"], name)
    shift = math.nan
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
        base = b_case[:, None]
    else:
        statistic, test = "mean", "wilcoxon_signed_rank"
        b_value = float(np.nanmean(base)) if base.size else math.nan
        c_value = float(np.nanmean(cand)) if cand.size else math.nan
        p = stats.wilcoxon_p(np.nanmean(cand, axis=1) - np.nanmean(base, axis=1))
        low, high = stats.mean_ratio_ci(base, cand, seed=seed, n_boot=n_boot)
    effect = c_value / b_value - 1 if b_value and not math.isnan(b_value) else math.nan
    comparison = MetricComparison(
        metric=f"{name}.{statistic}", evaluator=name, statistic=statistic, test=test,
        baseline_value=b_value, candidate_value=c_value, n=base.shape[0], effect=effect,
        ci_low=low - 1, ci_high=high - 1, p_value=p, relative=True, **ctx,
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
        suite: str = "",
    ) -> list[MetricComparison]:  # fmt: skip
        out: list[MetricComparison] = []
        for spec in evaluators:
            frame = results.filter(
                (pl.col("evaluator") == spec.name) & pl.col("version").is_in([baseline, candidate])
            )
            ctx = {"suite": suite, "baseline": baseline, "candidate": candidate,
                   "higher_is_better": spec.evaluator.higher_is_better}  # fmt: skip
            cases, base, cand = _paired(frame, "score", baseline, candidate)
            if not cases:
                continue
            # binary or not is decided on all versions' scores, so every candidate gets the same metrics
            binary = spec.evaluator.binary
            if binary is None:
                scores = results.filter(pl.col("evaluator") == spec.name)["score"].drop_nulls()
                binary = bool(scores.is_in([0.0, 1.0]).all())
            if binary:
                out.append(_rate_or_mean(spec.name, "rate", base, cand, True, ctx, self.n_boot))
                continue
            if spec.evaluator.quality:
                out.append(_rate_or_mean(spec.name, "mean", base, cand, False, ctx, self.n_boot))
            else:
                out.append(
                    _relative(spec.name, base, cand, ctx, spec.evaluator.name == "latency_ms", self.n_boot)
                )
            if spec.threshold is not None:
                pass_frame = frame.with_columns(pl.col("passed").cast(pl.Float64))
                cases, pb, pc = _paired(pass_frame, "passed", baseline, candidate)
                if cases:
                    ctx_pass = {**ctx, "higher_is_better": True}
                    out.append(_rate_or_mean(spec.name, "pass_rate", pb, pc, True, ctx_pass, self.n_boot))
        self._judge(out)
        return out

    def _judge(self, comparisons: list[MetricComparison]) -> None:
        adjusted = stats.holm([c.p_value for c in comparisons])
        for c, p_adj in zip(comparisons, adjusted, strict=True):
            c.p_adjusted = p_adj
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
