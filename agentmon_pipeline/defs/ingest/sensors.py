"""The landing sensor: one run for every settled file the warehouse's ledger has not loaded.

The ledger decides what is new, whichever command loaded it (`agentmon run`, the UI, a test):
after `make demo`, opening the UI starts no run for the demo's files. New files are batched into
one run; while an ingest run is queued or running the sensor waits, and what was dropped in the
meantime joins the next run (no queue of one run per file).
"""

import json
import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.defs.partitions import range_tags
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.ingest.landing import (
    day_range,
    first_day,
    read_ledger,
    scan_landing,
    settle_seconds,
    today,
)

INGESTING_JOBS = ("ingest_job", "agentmon_job")
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


STALE_AFTER = timedelta(hours=6)


def ingest_in_flight(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A run that ingests (queued or running), if any. A run whose status has not changed for
    STALE_AFTER does not count: an `agentmon run` killed with SIGKILL stays STARTED in the instance
    forever, and must not stop the sensor for good (a second run would only wait in the queue)."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=20)
    now = datetime.now(UTC)
    for record in records:
        updated = record.update_timestamp
        updated = updated if updated.tzinfo else updated.replace(tzinfo=UTC)
        if record.dagster_run.job_name in INGESTING_JOBS and now - updated < STALE_AFTER:
            return record.dagster_run
    return None


def build_landing_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=int(os.environ.get("AGENTMON_SENSOR_INTERVAL_SECONDS", "10")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts one ingest run for the files in the landing folder that the warehouse has not loaded.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        busy = ingest_in_flight(context.instance)
        if busy is not None:
            return dg.SkipReason(
                f"run {busy.run_id[:8]} ({busy.job_name}) is {busy.status.value.lower()}: "
                "files dropped now join the next run"
            )
        s = settings()
        try:
            ledger = read_ledger(s)
        except UserError as exc:  # the warehouse is busy (an `agentmon run`): next tick
            return dg.SkipReason(str(exc))
        cursor = json.loads(context.cursor) if context.cursor else {}
        scan = scan_landing(s.landing_dir, cursor, settle_seconds(), ledger)
        context.update_cursor(json.dumps(scan.cursor))
        if not scan.new:
            return dg.SkipReason(
                f"nothing new in {s.landing_dir} ({scan.waiting} file(s) still being written)"
            )
        names = [item.path.name for item in scan.new]
        # one run over the days the new files are of (their daily partitions of raw/*)
        days = day_range(
            [item.path for item in scan.new if not item.refused], s.landing_dir, first_day(), today()
        )
        return dg.RunRequest(
            run_key=scan.run_key,
            run_config={"ops": {"raw_telemetry": {"config": {"hashes": scan.hashes()}}}},
            tags={
                "agentmon/files": str(len(names)),
                "agentmon/first_file": names[0][:200],
                **range_tags(*days),
            }
            | ({"agentmon/refused": "symlink"} if any(item.refused for item in scan.new) else {}),
        )

    return landing_sensor
