"""Benchmark runs in the warehouse: `evals.runs`, `evals.results`, `analytics.eval_regressions`
(each verdict with its minimum detectable effect, `mde`, and the clusters it was judged over), and
the benchmark calls as telemetry spans in `raw.spans`.

The spans are written straight to raw (SPEC §5), never through the landing folder, so they cannot
trigger the landing sensor: a JSONL file under `$AGENTMON_HOME/benchmarks/` is loaded by the same
loader as a dropped file, so it follows the same rules and has a row in the ledger.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from agentmon_pipeline.config import Settings
from agentmon_pipeline.evaluation.regression import MetricComparison
from agentmon_pipeline.evaluation.runner import RESULT_SCHEMA, SuiteRun
from agentmon_pipeline.evaluation.suite import Suite, fingerprint
from agentmon_pipeline.storage import transaction


def save_run(con: duckdb.DuckDBPyConnection, run: SuiteRun) -> None:
    suite = run.suite
    calls = len(run.calls)
    failed = sum(1 for c in run.calls if c.call.failed)
    with transaction(con):
        con.execute(
            "insert into evals.runs (run_id, suite, suite_path, mode, versions, baseline, repeats, cases, calls, "
            "failed_calls, started_at, finished_at, fingerprint) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, suite.name, str(suite.path) if suite.path else None, run.mode, run.versions,
             suite.baseline, suite.repeats, len(suite.cases), calls, failed, run.started_at, run.finished_at,
             fingerprint(suite) if list(run.versions) == list(suite.versions) else None],
        )  # fmt: skip
        con.register("new_results", run.results.to_arrow())
        con.execute(f"insert into evals.results select {', '.join(RESULT_SCHEMA)} from new_results")
        con.unregister("new_results")


def save_comparisons(
    con: duckdb.DuckDBPyConnection, suite: str, run_id: str, comparisons: list[MetricComparison]
) -> None:
    """Replace the suite's verdicts with these (the table holds the latest per suite)."""
    now = datetime.now(UTC)
    rows = [
        (c["suite"], run_id, *(c[k] for k in (
             "baseline", "candidate", "metric", "evaluator", "statistic", "test", "higher_is_better", "relative",
             "baseline_value", "candidate_value", "n", "effect", "ci_low", "ci_high", "p_value", "p_adjusted",
             "verdict")), now, c["mde"], c["clusters"])
        for c in (comparison.as_dict() for comparison in comparisons)
    ]  # fmt: skip
    columns = ("suite, run_id, baseline, candidate, metric, evaluator, statistic, test, higher_is_better, relative, "
               "baseline_value, candidate_value, n, effect, ci_low, ci_high, p_value, p_adjusted, verdict, "
               "computed_at, mde, clusters")  # fmt: skip
    with transaction(con):
        con.execute("delete from analytics.eval_regressions where suite = ?", [suite])
        if rows:
            con.executemany(
                f"insert into analytics.eval_regressions ({columns}) values ({', '.join(['?'] * 22)})", rows
            )


def load_comparisons(con: duckdb.DuckDBPyConnection, suite: str, run_id: str) -> list[MetricComparison]:
    """The verdicts save_comparisons stored for the suite's run `run_id` (none if another run's are)."""
    names = [f.name for f in fields(MetricComparison) if f.name != "design"]
    rows = con.execute(
        f"select {', '.join(names)} from analytics.eval_regressions where suite = ? and run_id = ?",
        [suite, run_id],
    ).fetchall()
    floats = {f.name for f in fields(MetricComparison) if f.type in ("float", float)}
    return [
        MetricComparison(
            **{k: (math.nan if v is None and k in floats else v) for k, v in zip(names, row, strict=True)}
        )
        for row in rows
    ]


def latest_run_id(con: duckdb.DuckDBPyConnection, suite: str, versions: list[str]) -> str | None:
    """The newest run of the suite that has results for every one of `versions`."""
    wanted = sorted(set(versions))
    row = con.execute(
        f"""
        select r.run_id
        from evals.runs r
        where r.suite = ? and (
            select count(distinct version) from evals.results x
            where x.run_id = r.run_id and x.version in ({", ".join("?" * len(wanted))})
        ) = ?
        order by r.finished_at desc nulls last
        limit 1
        """,
        [suite, *wanted, len(wanted)],
    ).fetchall()
    return row[0][0] if row else None


def load_results(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    # in a fixed order: the bootstrap's fixed seed gives the same intervals for the same results
    query = (f"select {', '.join(RESULT_SCHEMA)} from evals.results where run_id = ? "
             "order by case_id, version, repeat, evaluator")  # fmt: skip
    return pl.DataFrame(con.execute(query, [run_id]).fetchall(), schema=RESULT_SCHEMA, orient="row")


def write_benchmark_spans(con: duckdb.DuckDBPyConnection, settings: Settings, run: SuiteRun) -> int:
    """Each benchmark call as one agent span (plus an llm span when the agent reported tokens),
    under the suite's agent id and the version called. Returns the spans loaded."""
    from agentmon_pipeline.ingest.loader import ingest_file

    if run.mode != "agent" or not run.calls:
        return 0
    folder = settings.benchmarks_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.suite.name}-{run.run_id}.jsonl"
    agent_id = run.suite.telemetry_agent_id
    lines = []
    for i, record in enumerate(run.calls):
        call = record.call
        start = record.started_at or run.started_at
        end = start + timedelta(milliseconds=call.latency_ms or 0)
        trace_id = f"{run.run_id}{i:016x}"
        # span ids are unique across runs too: a run's id is its agent span's id in the marts
        agent_span, llm_span = f"{run.run_id[:8]}{i:08x}", f"{run.run_id[8:16]}{i:08x}"
        attributes = {"agentmon.source": "benchmark", "agentmon.suite": run.suite.name,
                      "agentmon.eval_run_id": run.run_id, "agentmon.case_id": call.case_id,
                      "agentmon.repeat": record.repeat}  # fmt: skip
        span = {
            "trace_id": trace_id, "span_id": agent_span, "name": f"benchmark {run.suite.name}",
            "kind": "agent", "start_time": start.isoformat(), "end_time": end.isoformat(),
            "status": "error" if call.failed else "ok", "error_type": call.error_type,
            "error_message": call.error_message, "agent_id": agent_id, "agent_version": record.version,
            "input": call.input, "output": call.output, "attributes": attributes,
        }  # fmt: skip
        lines.append(json.dumps(span, default=str))
        if call.input_tokens is not None or call.output_tokens is not None:
            llm = {
                "trace_id": trace_id, "span_id": llm_span, "parent_span_id": agent_span,
                "name": "llm", "kind": "llm", "start_time": start.isoformat(), "end_time": end.isoformat(),
                "agent_id": agent_id, "agent_version": record.version,
                "model": record.model, "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens, "cost_usd": call.cost_usd, "attributes": attributes,
            }  # fmt: skip
            lines.append(json.dumps(llm, default=str))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from agentmon_pipeline.ingest.batch import redaction_policy

    result = ingest_file(con, path, settings.home / "tmp", redaction_policy(settings))
    return result.spans


def why_due(con: duckdb.DuckDBPyConnection, suite: Suite) -> str | None:
    """Why the suite should run now (never run in full, or its suite file, dataset or agent code
    changed since its last full run); None when its latest results still measure what it is."""
    row = con.execute(
        "select fingerprint, finished_at from evals.runs where suite = ? and fingerprint is not null "
        "order by finished_at desc nulls last limit 1",
        [suite.name],
    ).fetchone()
    if row is None:
        return "never run with all its versions"
    if row[0] != fingerprint(suite):
        return f"the suite, its dataset or its agent changed since its run of {row[1]:%Y-%m-%d %H:%M} UTC"
    return None
