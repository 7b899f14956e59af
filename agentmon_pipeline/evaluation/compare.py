"""Summaries per version and evaluator, and the leaderboard of N versions against the baseline.

The case is the unit here as in the tests: a case's repeats are averaged first. A mean's 95% CI
is Student's t over the case means; a pass rate's is Wilson's score interval when each case ran
once, and t over the cases' pass fractions when it ran several times.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import polars as pl
from scipy import stats as sps

from agentmon_pipeline.evaluation.regression import MetricComparison, RegressionDetector
from agentmon_pipeline.evaluation.suite import EvaluatorSpec, RegressionPolicy


def wilson_ci(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def t_ci(values: np.ndarray) -> tuple[float, float]:
    n = values.size
    if n < 2:
        return math.nan, math.nan
    m, se = float(values.mean()), float(values.std(ddof=1) / math.sqrt(n))
    if se == 0:
        return m, m
    half = float(sps.t.ppf(0.975, n - 1)) * se
    return m - half, m + half


class ResultAggregator:
    """Per version and evaluator: cases, mean score with its 95% CI, pass rate with its 95% CI."""

    def summaries(self, results: pl.DataFrame) -> list[dict]:
        per_case = results.group_by("version", "evaluator", "case_id").agg(
            pl.col("score").mean().alias("score"),
            pl.col("passed").cast(pl.Float64).mean().alias("passed"),
            pl.len().alias("calls"),
            pl.col("error").is_not_null().sum().alias("errors"),
        )
        out = []
        for (version, evaluator), group in per_case.group_by("version", "evaluator", maintain_order=True):
            scores = group["score"].drop_nulls().to_numpy()
            passed = group["passed"].drop_nulls().to_numpy()
            one_run = int(group["calls"].max()) == 1
            if passed.size and one_run:
                pass_low, pass_high = wilson_ci(int(passed.sum()), passed.size)
            else:
                pass_low, pass_high = t_ci(passed)
            mean_low, mean_high = t_ci(scores)
            out.append({
                "version": version, "evaluator": evaluator, "cases": group.height,
                "calls": int(group["calls"].sum()), "errors": int(group["errors"].sum()),
                "mean": float(scores.mean()) if scores.size else None,
                "mean_ci_low": _num(mean_low), "mean_ci_high": _num(mean_high),
                "pass_rate": float(passed.mean()) if passed.size else None,
                "pass_rate_ci_low": _num(pass_low), "pass_rate_ci_high": _num(pass_high),
            })  # fmt: skip
        return sorted(out, key=lambda r: (r["evaluator"], r["version"]))


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


class AgentComparator:
    """Every candidate version against the baseline: the comparisons, and a leaderboard."""

    def __init__(self, policy: RegressionPolicy | None = None):
        self.detector = RegressionDetector(policy)

    def compare(
        self, results: pl.DataFrame, evaluators: list[EvaluatorSpec], versions: list[str], suite: str = "",
        clusters: dict[str, str] | None = None,
    ) -> list[MetricComparison]:  # fmt: skip
        baseline, *candidates = versions
        out: list[MetricComparison] = []
        for candidate in candidates:
            out.extend(self.detector.compare(results, evaluators, baseline, candidate, suite, clusters))
        return out

    def leaderboard(self, comparisons: list[MetricComparison], versions: list[str]) -> list[dict]:
        """One row per version: each metric's value, and how many metrics regressed or improved."""
        rows = []
        for version in versions:
            row: dict = {"version": version, "role": "baseline" if version == versions[0] else "candidate"}
            mine = [c for c in comparisons if c.candidate == version]
            source = mine or [c for c in comparisons if c.baseline == version]
            for c in source:
                row[c.metric] = c.candidate_value if mine else c.baseline_value
            row["regressed"] = sum(c.verdict == "regressed" for c in mine)
            row["improved"] = sum(c.verdict == "improved" for c in mine)
            row["inconclusive"] = sum(c.verdict == "inconclusive" for c in mine)
            rows.append(row)
        return rows


def to_json(rows: list[dict] | list[MetricComparison]) -> str:
    return json.dumps([r.as_dict() if isinstance(r, MetricComparison) else r for r in rows], indent=2)


def to_csv(rows: list[dict] | list[MetricComparison]) -> str:
    dicts = [r.as_dict() if isinstance(r, MetricComparison) else r for r in rows]
    if not dicts:
        return ""
    columns = list(dict.fromkeys(k for d in dicts for k in d))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(dicts)
    return buffer.getvalue()


def _fmt(x: float | None, relative: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if relative:
        return f"{x:+.1%}"
    return f"{x:.4g}"


def size_text(x: float, relative: bool) -> str:
    """A size (an MDE): 0.0874 for an absolute effect, 12.3% for a relative one."""
    if math.isnan(x):
        return "-"
    return f"{x:.1%}" if relative else f"{x:.4f}"


def comparisons_table(comparisons: list[MetricComparison], markdown: bool = False) -> str:
    """The verdicts as a text (or markdown) table; `detectable` is each metric's minimum
    detectable effect at 80% power (a change of that size, either way, is found 4 times in 5)."""
    head = ["candidate", "metric", "baseline", "candidate value", "effect", "95% CI", "p", "p (Holm)", "n",
            "verdict", "detectable (80%)"]  # fmt: skip
    rows = []
    for c in comparisons:
        effect = "-" if math.isnan(c.effect) else f"{c.effect:+.1%}" if c.relative else f"{c.effect:+.4f}"
        ci = f"[{_fmt(c.ci_low, c.relative)}, {_fmt(c.ci_high, c.relative)}]"
        n = f"{c.n} in {c.clusters} clusters" if c.clusters else str(c.n)
        rows.append([c.candidate, c.metric, _fmt(c.baseline_value), _fmt(c.candidate_value), effect, ci,
                     f"{c.p_value:.3g}", f"{c.p_adjusted:.3g}", n, c.verdict, size_text(c.mde, c.relative)])  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), *(fmt.format(*r) for r in rows)])
