"""The nightly benchmark schedule: every suite, at the cron of `suites.schedule` in agentmon.yaml."""

import dagster as dg

from agentmon_pipeline.config import load_config_file, settings
from agentmon_pipeline.evaluation.schedule import parse_schedule


def eval_cron() -> str:
    return parse_schedule(load_config_file().get("suites"), settings().config_file or "agentmon.yaml")


def build_eval_schedule(job) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="evals_nightly",
        job=job,
        cron_schedule=eval_cron(),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs every benchmark suite, judges it, and rebuilds the eval marts.",
    )
