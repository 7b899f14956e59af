"""The nightly benchmark schedule: every suite, at the cron of `suites.schedule` in agentmon.yaml."""

import dagster as dg

from agentmon_pipeline.config import load_config_file

DEFAULT_CRON = "0 2 * * *"


def eval_cron() -> str:
    return (load_config_file().get("suites") or {}).get("schedule", DEFAULT_CRON)


def build_eval_schedule(job) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="evals_nightly",
        job=job,
        cron_schedule=eval_cron(),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs every benchmark suite, judges it, and rebuilds the eval marts.",
    )
