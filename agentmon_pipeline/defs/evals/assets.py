"""Benchmarks as assets: per suite, its results (the agents called, results stored) and its
regression report (verdicts, with a WARN check that fails when a metric regressed)."""

import re

import dagster as dg
import yaml

from agentmon_pipeline.config import settings
from agentmon_pipeline.evaluation.compare import comparisons_table
from agentmon_pipeline.evaluation.regression import MACHINE_NOTE, machine_dependent
from agentmon_pipeline.evaluation.service import current_verdicts, run_and_record
from agentmon_pipeline.evaluation.suite import list_suites, load_suite
from agentmon_pipeline.numbers import p_value, plain
from agentmon_pipeline.storage import connect


def _suite_names() -> dict[str, str]:
    """Suite name -> file, read cheaply: a broken suite fails its own asset, not the whole
    code location."""
    names = {}
    for path in list_suites():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            name = raw.get("name", path.stem) if isinstance(raw, dict) else path.stem
        except (OSError, yaml.YAMLError):
            name = path.stem
        names[str(name)] = str(path)
    return names


def _key_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def build_suite_assets(name: str, path: str) -> list:
    part = _key_part(name)
    results_key = dg.AssetKey(["evals", f"{part}_results"])
    report_key = dg.AssetKey(["analytics", f"{part}_regressions"])

    @dg.asset(
        key=results_key,
        group_name="evals",
        kinds={"python", "duckdb"},
        description=f"Benchmark suite `{name}` ({path}): every case against every version, scored.",
    )
    def suite_results(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        report = run_and_record(path)
        run = report.run
        context.log.info(f"suite {name}: run {run.run_id}, {len(run.calls)} calls")
        lines = ["| version | evaluator | mean | pass rate | cases |", "|---|---|---|---|---|"]
        for row in report.summaries:
            mean = "-" if row["mean"] is None else plain(row["mean"])
            rate = "-" if row["pass_rate"] is None else f"{row['pass_rate']:.1%}"
            lines.append(f"| {row['version']} | {row['evaluator']} | {mean} | {rate} | {row['cases']} |")
        # numbers the UI plots across materializations: each version's pass rate and mean score
        plotted = {}
        for row in report.summaries:
            for stat in ("pass_rate", "mean"):
                if row[stat] is not None:
                    plotted[f"{stat} {row['version']} {row['evaluator']}"] = float(row[stat])
        return dg.MaterializeResult(
            metadata={
                "run_id": run.run_id,
                "calls": len(run.calls),
                "failed_calls": sum(1 for c in run.calls if c.call.failed),
                "benchmark_spans": report.spans_written,
                "summary": dg.MetadataValue.md("\n".join(lines)),
                **plotted,
            }
        )

    @dg.asset(
        key=report_key,
        deps=[results_key],
        group_name="evals",
        kinds={"python", "duckdb"},
        description=f"Verdicts of suite `{name}`: every candidate against the baseline, metric by metric "
        "(analytics.eval_regressions).",
        check_specs=[
            dg.AssetCheckSpec(
                "no_regressions",
                asset=report_key,
                description="Fails (WARN) when a metric regressed; `agentmon eval compare` is the gate for CI.",
            )
        ],
    )
    def suite_regressions(context: dg.AssetExecutionContext):
        suite = load_suite(path)
        run_id, comparisons = current_verdicts(suite)  # suite_results' own, unless the suite changed since
        regressed = [c for c in comparisons if c.verdict == "regressed"]
        counts = {
            v: sum(c.verdict == v for c in comparisons)
            for v in ("regressed", "improved", "unchanged", "inconclusive")
        }
        yield dg.MaterializeResult(
            metadata={
                "run_id": run_id,
                **counts,
                "verdicts": dg.MetadataValue.md(comparisons_table(comparisons, markdown=True)),
            }
        )
        yield dg.AssetCheckResult(
            check_name="no_regressions",
            passed=not regressed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"regressed": dg.MetadataValue.md("\n".join(
                f"- {c.candidate} {c.metric}: effect {plain(c.effect, signed=True)}, {p_value(c.p_adjusted)} (Holm)"
                + (f" ({MACHINE_NOTE})" if machine_dependent(c.evaluator, suite.repeats) else "")
                for c in regressed) or "none")},
        )  # fmt: skip

    return [suite_results, suite_regressions]


SUITES = _suite_names()
suite_assets = [a for name, path in SUITES.items() for a in build_suite_assets(name, path)]


EVAL_TABLES = {"runs": "One row per benchmark run.", "results": "One row per benchmark call and evaluator."}


@dg.multi_asset(
    name="eval_tables",
    specs=[
        dg.AssetSpec(
            ["evals", table],
            description=text,
            group_name="evals",
            kinds={"duckdb"},
            deps=[["evals", f"{_key_part(n)}_results"] for n in SUITES],
        )
        for table, text in EVAL_TABLES.items()
    ],
)
def eval_tables():
    """The tables the suites write, as the sources of the dbt eval marts."""
    with connect(settings(), read_only=True) as con:
        runs = con.execute("select count(*) from evals.runs").fetchone()[0]
        results = con.execute("select count(*) from evals.results").fetchone()[0]
        latest = con.execute("select max(finished_at) from evals.runs").fetchone()[0]
    yield dg.MaterializeResult(
        asset_key=["evals", "runs"], metadata={"row_count": runs, "latest": str(latest)}
    )
    yield dg.MaterializeResult(asset_key=["evals", "results"], metadata={"row_count": results})


__all__ = ["SUITES", "eval_tables", "suite_assets"]
