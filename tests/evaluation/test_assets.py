"""The benchmark assets through Dagster: results, verdicts with their WARN check, the eval marts,
and the nightly schedule."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from agentmon_pipeline.config import settings
from agentmon_pipeline.errors import UserError


def test_suite_assets_store_results_flag_regressions_and_feed_the_eval_marts(home, monkeypatch):
    from agentmon_pipeline.defs.evals.assets import build_suite_assets, eval_tables
    from agentmon_pipeline.defs.resources import dbt_resource
    from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models
    from agentmon_pipeline.evaluation.compare import AgentComparator
    from agentmon_pipeline.evaluation.suite import find_suite

    suite_assets = build_suite_assets("support-qa", str(find_suite("support-qa")))
    eval_marts = [["staging", "stg_evals__runs"], ["staging", "stg_evals__results"],
                  ["marts", "fct_eval_results"], ["marts", "agg_eval_scores"]]  # fmt: skip
    judged = []  # the suite's bootstraps run once: suite_regressions reads the verdicts suite_results stored
    compare = AgentComparator.compare
    monkeypatch.setattr(
        AgentComparator, "compare", lambda self, *a, **k: judged.append(a[3]) or compare(self, *a, **k)
    )
    result = dg.materialize(
        [*suite_assets, eval_tables, agentmon_dbt_models],
        selection=dg.AssetSelection.assets(*suite_assets, eval_tables)
        | dg.AssetSelection.assets(*eval_marts),
        resources={"dbt": dbt_resource},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success  # a regression is a finding (WARN), not a failed run
    assert judged == ["support-qa"]
    [check] = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
               and e.event_specific_data.check_name == "no_regressions"]  # fmt: skip
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    materialized = {
        tuple(e.asset_key.path) for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    assert {
        ("evals", "support_qa_results"),
        ("analytics", "support_qa_regressions"),
        ("marts", "agg_eval_scores"),
    } <= materialized

    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    verdicts = dict(con.execute(
        "select candidate || ' ' || metric, verdict from analytics.eval_regressions where suite = 'support-qa'"
    ).fetchall())  # fmt: skip
    assert (
        verdicts["1.1 normalized_match.rate"] == "regressed" and verdicts["1.2 latency_ms.p95"] == "regressed"
    )
    # every verdict, "unchanged" and "inconclusive" too, says what size of change the suite could find
    assert (
        con.execute("select count(*), count(mde) from analytics.eval_regressions").fetchone()
        == (len(verdicts),) * 2
    )
    [table] = [
        e.event_specific_data.materialization.metadata["verdicts"].value
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == "support_qa_regressions"
    ]
    assert "detectable (80%)" in table.splitlines()[0]
    scores = {
        (v, e): (n, rate, low, high)
        for v, e, n, rate, low, high in con.execute(
            "select version, evaluator, cases, pass_rate, pass_rate_ci_low, pass_rate_ci_high from marts.agg_eval_scores"
        ).fetchall()
    }
    n, rate, low, high = scores[("1.1", "normalized_match")]
    assert n == 150 and rate == pytest.approx(118 / 150) and low < rate < high
    # the benchmark calls are agent runs of support-bot, marked as such, outside production aggregates
    assert con.execute(
        "select count(*) from marts.fct_eval_results where evaluator = 'error'"
    ).fetchone() == (450,)
    con.close()


def test_schedule_and_jobs(home, tmp_path, monkeypatch):
    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.defs.evals.schedules import eval_cron

    schedule = defs.resolve_schedule_def("evals_nightly")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.job_name == "evals_job"
    assert (
        defs.resolve_sensor_def("landing_sensor").job_name == "ingest_job"
    )  # a dropped file runs no benchmark
    evals_keys = {
        k.to_user_string() for k in defs.resolve_job_def("evals_job").asset_layer.selected_asset_keys
    }
    assert {
        "evals/support_qa_results",
        "analytics/support_qa_regressions",
        "marts/agg_eval_scores",
    } <= evals_keys
    assert "raw/spans" not in evals_keys
    # retention runs on its own daily schedule, never inside an ingest or `agentmon run`
    assert defs.resolve_schedule_def("retention_daily").cron_schedule == "30 3 * * *"
    for job in ("agentmon_job", "ingest_job"):
        keys = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        assert "maintenance/retention" not in keys

    config = tmp_path / "agentmon.yaml"
    config.write_text("suites:\n  schedule: '30 3 * * 1-5'\n")
    monkeypatch.setenv("AGENTMON_CONFIG", str(config))
    assert eval_cron() == "30 3 * * 1-5"
    config.write_text("suites:\n  schedule: 'every night'\n")
    with pytest.raises(
        UserError, match=r"agentmon.yaml: suites.schedule: 'every night' is not a cron expression"
    ):
        eval_cron()


def test_a_cron_expression_is_what_dagster_schedules_accept():
    """The check agentmon.yaml gets before Dagster builds the schedule: what Dagster refuses is
    refused here, in one line, before any run."""
    import dagster as dg

    from agentmon_pipeline.evaluation.schedule import is_cron

    good = ["0 2 * * *", "@daily", "*/15 * * * mon-fri", "30 3 * jan,jul 0", "0 0 31 2,3 *"]
    bad = ["every night", "0 2 * * * 5", "61 2 * * *", "0 0 30 2 *", "", "* * *"]
    assert [is_cron(c) for c in good] == [True] * len(good)
    assert [is_cron(c) for c in bad] == [False] * len(bad)
    for cron in good:  # Dagster takes each of them
        dg.ScheduleDefinition(name="s", cron_schedule=cron, target=dg.AssetSelection.all())
    for cron in bad:
        with pytest.raises(dg.DagsterInvalidDefinitionError):
            dg.ScheduleDefinition(name="s", cron_schedule=cron, target=dg.AssetSelection.all())
