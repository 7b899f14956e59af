"""Headless runs: the same Dagster job the UI shows, executed in this process (`agentmon run`,
through runner.run_pipeline), with a line printed as the run enters each stage."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import uuid
from pathlib import Path

from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance
from dagster._core.scheduler.instigation import InstigatorType

from agentmon_pipeline.app.runner import STAGE_WORDS, RunSummary, stage_of
from agentmon_pipeline.config import Settings

log = logging.getLogger(__name__)


class Progress:
    """Prints a line when the run enters a stage, from the run's own event log (a thread that
    polls it once a second), so a long run is never silent."""

    def __init__(self, instance, run_id: str, started: float, out=None):
        import threading

        self.instance, self.run_id, self.out, self.started = instance, run_id, out or sys.stdout, started
        self.entered: set[str] = set()
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self._poll()

    def _loop(self):
        while not self._stop.wait(1.0):
            try:
                self._poll()
            except Exception:
                log.debug("progress poll failed", exc_info=True)

    def _poll(self):
        records = self.instance.all_logs(
            self.run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_FAILURE}
        )
        for record in records[self.seen :]:
            event = record.dagster_event
            stage = stage_of(event.step_key or "")
            if event.event_type == DagsterEventType.STEP_FAILURE:
                self._say(f"{event.step_key} failed" + _why(event))
            elif stage not in self.entered and stage != "other":
                self.entered.add(stage)
                self._say(STAGE_WORDS[stage])
        self.seen = len(records)

    def _say(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.started:6.1f} s] {text}", file=self.out, flush=True)


def _why(event) -> str:
    """The first line of what a failed step raised (the user's exception, not Dagster's wrapper)."""
    error = getattr(event.event_specific_data, "error", None)
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    message = (getattr(error, "message", "") or "").strip().splitlines()
    return f": {message[0].split('UserError: ', 1)[-1][:400]}" if message else ""


def execute_job(
    s: Settings,
    verbose: bool,
    current: list[str],
    tags: dict[str, str] | None = None,
    started: float | None = None,
) -> RunSummary:
    """Materialize every asset of agentmon_job once, in this process, on the persistent instance
    (the UI lists the run), leaving out the suites in `current`; what Dagster says of the run.
    `tags`: the run's (its daily partitions: `partitions.range_tags`); `started`: the command's
    start (time.monotonic), from which the stage lines and the run's time count."""
    # imported here: the definitions read the suites and the config when they load, which must
    # be the run's (an import when this module is imported would fix them at that moment)
    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.defs.evals.assets import _key_part

    job = defs.resolve_job_def("agentmon_job")
    skipped = {
        key
        for name in current
        for key in (("evals", f"{_key_part(name)}_results"), ("analytics", f"{_key_part(name)}_regressions"))
    }
    selection = [key for key in job.asset_layer.selected_asset_keys if tuple(key.path) not in skipped]
    started = time.monotonic() if started is None else started
    run_id = str(uuid.uuid4())
    console = sys.stdout
    output = s.home / "logs" / f"run-{run_id[:8]}.log"  # dbt's own output, unless --verbose
    output.parent.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.get() as instance, open(output, "w", encoding="utf-8") as captured:
        level = "DEBUG" if s.log_level == "DEBUG" else ("INFO" if verbose else "WARNING")
        quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(captured)
        with Progress(instance, run_id, started, out=console), quiet:
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_id=run_id,
                tags=tags,
                asset_selection=selection if skipped else None,
                run_config={"loggers": {"console": {"config": {"log_level": level}}}},
            )
    for old in sorted(output.parent.glob("run-*.log"), key=lambda f: f.stat().st_mtime)[:-20]:
        old.unlink(missing_ok=True)  # the last 20 runs' output is kept
    summary = RunSummary(success=result.success, run_id=result.run_id, suites_current=sorted(current),
                         log_file=None if verbose else output,
                         seconds=time.monotonic() - started)  # fmt: skip
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            key = event.asset_key.path if event.asset_key else []
            if key and key[0] == "marts":
                summary.marts_built += 1
            elif key == ["raw", "spans"]:  # what the ingest counted, not counted again
                entry = event.event_specific_data.materialization.metadata.get("outside_retention_window")
                summary.outside_retention = int(entry.value) if entry is not None else 0
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.passed:
                summary.checks_passed += 1
            elif evaluation.severity == AssetCheckSeverity.WARN:
                pass  # a finding, listed below from the table that records it
            else:
                summary.checks_failed.append(
                    f"{'/'.join(evaluation.asset_key.path)}: {evaluation.check_name}"
                )
        elif event.event_type_value == "STEP_FAILURE":
            summary.failed_steps.append(event.step_key or "?")
        elif event.event_type_value == "STEP_SUCCESS" and (event.step_key or "").endswith("_results"):
            summary.suites_run += 1
    return summary


# what the instance says, for the benchmarks and tests of the UI path


def sensor_ticks(instance, name: str):
    """The latest ticks (50 at most) of the sensor `name`, newest first."""
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=50)
    return []


def last_run_seconds(dagster_home: Path) -> float | None:
    """How long the latest run of the instance took, once it has ended (None while it runs)."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=1)
        if not runs or not runs[0].is_finished:
            return None
        stats = instance.get_run_stats(runs[0].run_id)
        return stats.end_time - stats.start_time
