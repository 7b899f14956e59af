"""The landing sensor: one run per new file content, keyed by the content's sha256."""

import json

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.ingest.batch import settle_seconds
from agentmon_pipeline.ingest.landing import scan_landing


def build_landing_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts a run for each new file content dropped into the landing folder.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        cursor = json.loads(context.cursor) if context.cursor else {}
        scan = scan_landing(settings().landing_dir, cursor, settle_seconds())
        for item in scan.new:
            yield dg.RunRequest(
                run_key=item.sha256,
                run_config={"ops": {"raw_telemetry": {"config": {"files": [str(item.path)]}}}},
                tags={"agentmon/file": item.path.name}
                | ({"agentmon/refused": "symlink"} if item.refused else {"agentmon/sha256": item.sha256}),
            )
        context.update_cursor(json.dumps(scan.cursor))
        if not scan.new:
            return dg.SkipReason(
                f"no new content in {settings().landing_dir} ({scan.waiting} file(s) still being written)"
            )

    return landing_sensor
