"""The UI path as a user takes it: `make demo`, then `make ui` (a real `dagster dev`: webserver,
daemon, code server), then a file dropped into the landing folder.

- the landing sensor asks the warehouse's ledger, so the demo's files (loaded by `agentmon run`)
  start no run;
- a dropped Langfuse trace reaches `marts.fct_llm_calls` through the sensor, the run queue and one
  in-process run, whose event log (the run's page) shows the marts it built; `make bench` times it;
- an idle UI starts no run: the sensor's ticks skip, the escalation schedule skips when nothing
  is due (its ticks over 30 minutes evaluated one by one) and runs when an escalation is due.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from agentmon_pipeline.app.runner import run_pipeline
from agentmon_pipeline.config import settings
from agentmon_pipeline.defs.headless import sensor_ticks
from agentmon_pipeline.devtools.bench import DagsterDev, wait_for
from agentmon_pipeline.devtools.demo import generate_demo
from agentmon_pipeline.home import mark_demo_home
from agentmon_pipeline.storage import connect
from tests.conftest import CORPUS, firing_alerts

TRACE = CORPUS / "langfuse_framework_traces" / "pydantic-ai-tools-2025-12-04.trace.json"
DONE = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@pytest.mark.slow
def test_make_ui_after_make_demo_queues_nothing_and_a_dropped_trace_reaches_the_marts(
    home, tmp_path, monkeypatch
):
    monkeypatch.delenv("AGENTMON_SUITES_DIR")  # the demo home's own suites, as `make ui` finds them
    monkeypatch.setenv("MONITORING_SETTLE_SECONDS", "1")
    monkeypatch.setenv("AGENTMON_SENSOR_INTERVAL_SECONDS", "3")  # 10 by default: the test waits less
    s = settings()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    generate_demo(s.landing_dir, days=2, agents=2, seed=5, end=end)  # `make demo`, shorter
    mark_demo_home(s)
    config = s.home / "agentmon.yaml"  # the example config, copied in, with a budget this data exceeds
    config.write_text(config.read_text().replace("monthly_usd: 150", "monthly_usd: 0.01"))
    cli_run = run_pipeline(benchmarks=False)
    assert cli_run.success
    alerts_before = firing_alerts(s)
    assert any(rule == "budget" for _, rule, *_ in alerts_before), alerts_before
    monkeypatch.setenv("DAGSTER_HOME", str(s.dagster_home))
    new_runs = lambda instance: [r for r in instance.get_runs() if r.run_id != cli_run.run_id]
    ui = DagsterDev(s.home, tmp_path / "dagster-dev.log")
    try:
        wait_for(ui.up, 120, "the webserver")
        with dg.DagsterInstance.get() as instance:
            # a tick of the sensor over the demo's files: skipped, no run
            # (finished ticks: one may be under way while the test looks, STARTED)
            finished = lambda: [
                t for t in sensor_ticks(instance, "landing_sensor") if t.status.value != "STARTED"
            ]
            ticks = wait_for(finished, 90, "a sensor tick", every=1)
            assert new_runs(instance) == []
            assert all(t.status.value == "SKIPPED" for t in ticks), [(t.status.value, t.error) for t in ticks]

            dropped = time.monotonic()
            shutil.copy(TRACE, s.landing_dir / TRACE.name)
            run = wait_for(lambda: next(iter(new_runs(instance)), None), 90, "the sensor's run", every=1)
            assert run.job_name == "ingest_job" and run.tags["agentmon/files"] == "1"
            run = wait_for(lambda: (r := instance.get_run_by_id(run.run_id)).status in DONE and r, 180,
                           "the run to finish", every=1)  # fmt: skip
            took = time.monotonic() - dropped
            assert run.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "dagster-dev.log").read_text()[
                -3000:
            ]
            built = {e.asset_materialization.asset_key.to_user_string()
                     for e in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
                     if e.asset_materialization}  # fmt: skip
            assert {"raw/spans", "marts/fct_llm_calls", "alerts/alerts"} <= built  # the run's page shows them
            trace_id = json.loads(TRACE.read_text())["trace"]["id"]
            with connect(s, read_only=True) as con:
                calls = con.execute(
                    "select count(*) from marts.fct_llm_calls where trace_id = ?", [trace_id]
                ).fetchone()[0]
                suites = con.execute("select count(*) from evals.runs").fetchone()[0]
            assert calls > 0 and suites == 0  # a dropped file never starts a benchmark
            # the same config as the CLI's (the demo home's agentmon.yaml): no alert resolved or fired anew
            assert firing_alerts(s) == alerts_before
            print(f"drop to marts through the UI: {took:.1f} s")

            # idle: the next ticks skip (the file is in the ledger now), no other run starts
            ticks = len(sensor_ticks(instance, "landing_sensor"))
            wait_for(
                lambda: len(sensor_ticks(instance, "landing_sensor")) >= ticks + 1,
                60,
                "one more tick",
                every=1,
            )
            assert [r.run_id for r in new_runs(instance)] == [run.run_id]
    finally:
        ui.stop()
    escalation_runs_only_when_due(s)


def escalation_runs_only_when_due(s) -> None:
    """30 minutes of an idle UI: every tick of the escalation schedule skips; a firing, notified
    alert past its escalation step (the demo's agentmon.yaml: 30 minutes) is due."""
    from agentmon_pipeline.definitions import defs

    schedule = defs.resolve_schedule_def("alerts_escalation")
    now = datetime.now(UTC)
    with dg.DagsterInstance.ephemeral() as instance:
        for minute in range(0, 30, 5):
            tick = schedule(
                dg.build_schedule_context(
                    instance=instance, scheduled_execution_time=now + timedelta(minutes=minute)
                )
            )
            assert isinstance(tick, dg.SkipReason) and "nothing to escalate" in tick.skip_message
        with connect(s) as con:  # an alert that was sent and is not acknowledged, fired an hour ago
            con.execute(
                "insert into alerts.alerts (alert_id, fingerprint, rule, kind, severity, state, message, first_seen_at, "
                "last_seen_at, fire_count, escalation_level, notified) values "
                "('a1', 'f', 'high-error-rate', 'metric', 'error', 'firing', 'm', ?, ?, 1, 0, true)",
                [now - timedelta(hours=1), now],
            )
        tick = schedule(dg.build_schedule_context(instance=instance))
        assert isinstance(tick, dg.RunRequest) and "escalation level 1" in tick.tags["agentmon/due"]


def test_the_retention_schedule_starts_no_run_unless_a_window_is_set(monkeypatch):
    from agentmon_pipeline.definitions import defs

    schedule = defs.resolve_schedule_def("retention_daily")
    with dg.DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv("MONITORING_RETENTION_DAYS", "0")
        assert isinstance(schedule(dg.build_schedule_context(instance=instance)), dg.SkipReason)
        monkeypatch.setenv("MONITORING_RETENTION_DAYS", "30")
        assert schedule(dg.build_schedule_context(instance=instance)).tags == {
            "agentmon/retention_days": "30"
        }
