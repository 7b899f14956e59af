"""Did the last deployment make things worse? Each agent version against the one it replaced,
from production runs.

Matched windows: a version's switch time is when it went live: its activation or rollback in the
registry, or a deployment event, else its first production run. The candidate's runs in the
`window` after the switch are compared with the previous version's runs in the `window` before
it, with `window` the whole days (at most 7) that both the candidate and the previous version have
been live, so both sides cover the same hours of the day; under one day, the comparison waits
("needs 24 hours of each version around the switch"). A rollback is a switch too: the restored
version is compared with the one it replaced. Runs without a cost (a model without a price) are
left out of the cost comparison, not counted at $0.

- success rate: Fisher's exact test on the 2x2 table (successes, failures) x (baseline,
  candidate); effect = difference of rates, 95% CI by bootstrap (runs resampled in each group);
- latency: Mann–Whitney U; effect = p95 ratio - 1, bootstrap 95% CI;
- cost per run: Mann–Whitney U; effect = ratio of means - 1, bootstrap 95% CI.
Holm over every metric of every comparison of a refresh (one family: what the check and the alerts
act on), and the verdicts of the evaluation issue (regressed, improved, unchanged, inconclusive),
with min effects of 0.02 (success rate) and 10% (latency, cost).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np
from scipy import stats as sps

from agentmon_pipeline.evaluation.stats import holm, mann_whitney_p, verdict

N_BOOT = 2000
MIN_RUNS = 10  # fewer runs on either side: not compared (recorded as inconclusive)
# the comparison window is whole days (each hour of the day on both sides), at least one
MIN_WINDOW = timedelta(hours=24)


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

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _boot(rng, a: np.ndarray, b: np.ndarray, stat) -> np.ndarray:
    ia = rng.integers(0, a.size, (N_BOOT, a.size))
    ib = rng.integers(0, b.size, (N_BOOT, b.size))
    return stat(a[ia]), stat(b[ib])


def _ci(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def compare_runs(
    base_success: np.ndarray, cand_success: np.ndarray, base_ms: np.ndarray, cand_ms: np.ndarray,
    base_cost: np.ndarray, cand_cost: np.ndarray, seed: int = 0, alpha: float = 0.05,
    min_effect: float = 0.02, min_relative_change: float = 0.10,
) -> list[dict]:  # fmt: skip
    """Three metric comparisons (dicts without the agent/version fields)."""
    rng = np.random.default_rng(seed)
    out = []
    # success rate
    table = [
        [int(base_success.sum()), int((~base_success).sum())],
        [int(cand_success.sum()), int((~cand_success).sum())],
    ]
    p = float(sps.fisher_exact(table).pvalue) if base_success.size and cand_success.size else 1.0
    b_rate, c_rate = float(base_success.mean()), float(cand_success.mean())
    bb, cb = _boot(rng, base_success.astype(float), cand_success.astype(float), lambda x: x.mean(axis=1))
    out.append({"metric": "success_rate", "test": "fisher_exact", "higher": True, "relative": False,
                "baseline_value": b_rate, "candidate_value": c_rate, "effect": c_rate - b_rate,
                "ci": _ci(cb - bb), "p_value": p})  # fmt: skip
    # latency p95
    b95, c95 = float(np.percentile(base_ms, 95)), float(np.percentile(cand_ms, 95))
    bb, cb = _boot(rng, base_ms, cand_ms, lambda x: np.percentile(x, 95, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cb / bb - 1
    out.append({"metric": "p95_duration_ms", "test": "mann_whitney_u", "higher": False, "relative": True,
                "baseline_value": b95, "candidate_value": c95, "effect": c95 / b95 - 1 if b95 else math.nan,
                "ci": _ci(ratios), "p_value": mann_whitney_p(base_ms, cand_ms)})  # fmt: skip
    # cost per run
    b_cost, c_cost = float(base_cost.mean()), float(cand_cost.mean())
    bb, cb = _boot(rng, base_cost, cand_cost, lambda x: x.mean(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cb / bb - 1
    out.append({"metric": "cost_per_run_usd", "test": "mann_whitney_u", "higher": False, "relative": True,
                "baseline_value": b_cost, "candidate_value": c_cost,
                "effect": c_cost / b_cost - 1 if b_cost else math.nan, "ci": _ci(ratios),
                "p_value": mann_whitney_p(base_cost, cand_cost)})  # fmt: skip
    for row, p_adj in zip(out, holm([r["p_value"] for r in out]), strict=True):
        row["p_adjusted"] = p_adj
        threshold = min_relative_change if row["relative"] else min_effect
        row["verdict"] = verdict(
            row["effect"], row["ci"][0], row["ci"][1], p_adj, alpha, threshold, row["higher"]
        )
    return out


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
            [deployed.cast(firsts.schema), firsts.join(deployed, on=["agent_id", "agent_version"], how="anti")]
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
    Every version against the one live before it: the candidate's runs from its switch until
    the next switch, for up to 7 days, against the previous version's runs over as long a time
    just before the switch (and after the previous version went live)."""
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
            cand_all = agent_runs.filter((pl.col("agent_version") == current) & (pl.col("started_at") >= switch))
            if until is not None:
                cand_all = cand_all.filter(pl.col("started_at") < until)
            if cand_all.height == 0:
                continue
            live = cand_all["started_at"].max() - switch
            # whole days, as many on both sides: the same hours of the day on each
            window = timedelta(days=min(7, min(live, switch - previous_at) // timedelta(days=1)))
            base = agent_runs.filter(
                (pl.col("agent_version") == previous)
                & (pl.col("started_at") >= switch - window)
                & (pl.col("started_at") < switch)
            )
            cand = cand_all.filter(pl.col("started_at") < switch + window)
            common = {"agent_id": agent_id, "baseline_version": previous,
                      "candidate_version": current, "switched_at": switch,
                      "window_hours": window.total_seconds() / 3600, "n_baseline": base.height,
                      "n_candidate": cand.height}  # fmt: skip
            waiting = None
            if window < MIN_WINDOW:
                hours = min(live, switch - previous_at).total_seconds() / 3600
                waiting = f"needs 24 hours of each version around the switch, has {hours:.0f}"
            elif base.height < MIN_RUNS or cand.height < MIN_RUNS:
                waiting = f"too few runs (needs {MIN_RUNS} each side)"
            if waiting:
                for metric in ("success_rate", "p95_duration_ms", "cost_per_run_usd"):
                    out.append(VersionComparison(**common, metric=metric, baseline_value=math.nan,
                        candidate_value=math.nan, effect=math.nan, ci_low=math.nan, ci_high=math.nan,
                        p_value=math.nan, p_adjusted=math.nan, verdict="inconclusive", test=waiting))  # fmt: skip
                continue
            # unpriced runs (a model without a price) have no cost: left out, not counted at $0
            base_cost, cand_cost = base["cost_usd"].drop_nulls(), cand["cost_usd"].drop_nulls()
            results = compare_runs(
                base["is_success"].to_numpy().astype(bool), cand["is_success"].to_numpy().astype(bool),
                base["duration_ms"].to_numpy().astype(float), cand["duration_ms"].to_numpy().astype(float),
                base_cost.to_numpy().astype(float), cand_cost.to_numpy().astype(float),
                seed=zlib.crc32(f"{agent_id}|{previous}|{current}".encode()),
            )  # fmt: skip
            for r in results:
                if r["metric"] == "cost_per_run_usd" and min(base_cost.len(), cand_cost.len()) < MIN_RUNS:
                    r.update(effect=math.nan, p_value=math.nan, p_adjusted=math.nan, verdict="inconclusive",
                             test=f"too few priced runs (needs {MIN_RUNS} each side)", ci=(math.nan, math.nan))  # fmt: skip
                out.append(VersionComparison(**common, metric=r["metric"], baseline_value=r["baseline_value"],
                    candidate_value=r["candidate_value"], effect=r["effect"], ci_low=r["ci"][0], ci_high=r["ci"][1],
                    p_value=r["p_value"], p_adjusted=r["p_adjusted"], verdict=r["verdict"], test=r["test"]))  # fmt: skip
    judge_family(out)
    return out


def judge_family(comparisons: list[VersionComparison], alpha: float = 0.05, min_effect: float = 0.02,
                 min_relative_change: float = 0.10) -> None:  # fmt: skip
    """Holm over every test of every comparison at once: the family is what one refresh reports
    (and the check and the alerts act on), so that 8 agents x 3 metrics do not give a false alarm
    on most refreshes, as 24 separate tests at 5% would."""
    tested = [c for c in comparisons if not math.isnan(c.p_value)]
    for c, p_adj in zip(tested, holm([c.p_value for c in tested]), strict=True):
        c.p_adjusted = p_adj
        rate = c.metric == "success_rate"
        c.verdict = verdict(c.effect, c.ci_low, c.ci_high, p_adj, alpha, min_effect if rate else min_relative_change, rate)
