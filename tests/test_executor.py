"""Runs spread over processes: the job with Dagster's multiprocess executor (a process per step, as
`AGENTMON_EXECUTOR=multiprocess` sets for the UI's runs, and as a Celery or Kubernetes executor
spreads them over machines) succeeds, with independent steps side by side. What it builds is what
the in-process run builds: the same asset functions, tested everywhere else."""

from __future__ import annotations

import os

import dagster as dg
import duckdb
import pytest

from agentmon_pipeline.config import settings


def parallel_job() -> dg.JobDefinition:
    """Two of the analytics (independent of each other), a process per step, side by side
    (module level: the step processes rebuild it)."""
    from agentmon_pipeline.definitions import defs

    job = dg.define_asset_job(
        "parallel", executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}),
        selection=dg.AssetSelection.assets(*(["analytics", name] for name in ("budget_burn", "forecasts"))),
    )  # fmt: skip
    return dg.Definitions(assets=defs.assets, jobs=[job], resources=defs.resources).resolve_job_def(
        "parallel"
    )


def _tables(path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute("select table_schema || '.' || table_name from information_schema.tables "
                            "where table_schema in ('marts', 'analytics') order by 1").fetchall()  # fmt: skip
        return {name: con.execute(f"select count(*) from {name}").fetchone()[0] for (name,) in names}
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_a_process_per_step_runs_the_analytics_side_by_side(built_demo_home, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.execute_job(dg.reconstructable(parallel_job), instance=instance)
        assert result.success
        steps = [(e.dagster_event.event_type_value, e.step_key, e.dagster_event.pid)
                 for e in instance.all_logs(result.run_id)
                 if e.dagster_event and e.dagster_event.event_type_value in ("STEP_WORKER_STARTING", "STEP_START", "STEP_SUCCESS")]  # fmt: skip
    starts = [(step, pid) for kind, step, pid in steps if kind == "STEP_START"]
    assert len(starts) == 2 and os.getpid() not in {pid for _, pid in starts}
    assert len({pid for _, pid in starts}) == len(starts)  # a process of its own each
    # the analytics ran side by side: the worker of a second one started before the first had finished
    order = [kind for kind, step, _ in steps if step.startswith("analytics") and kind != "STEP_START"]
    assert order[:2] == ["STEP_WORKER_STARTING", "STEP_WORKER_STARTING"], order
    tables = _tables(settings().warehouse_path)
    assert tables["marts.fct_agent_runs"] > 500 and tables["analytics.readiness"] > 0
    assert {"analytics.forecasts", "analytics.budget_burn"} <= set(tables)
