"""The Dagster code location: assembles the definitions in defs/, nothing else."""

import os

import dagster as dg

from agentmon_pipeline.defs.alerting.assets import alerts, alerts_job, alerts_schedule
from agentmon_pipeline.defs.analytics.assets import analytics_assets
from agentmon_pipeline.defs.evals.assets import eval_tables, suite_assets
from agentmon_pipeline.defs.evals.schedules import build_eval_schedule
from agentmon_pipeline.defs.exports.assets import prometheus_textfile
from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
from agentmon_pipeline.defs.ingest.sensors import build_landing_sensor
from agentmon_pipeline.defs.maintenance.assets import retention, retention_job, retention_schedule
from agentmon_pipeline.defs.registry.assets import agent_registry
from agentmon_pipeline.defs.reports.assets import reports_snapshot
from agentmon_pipeline.defs.resources import dbt_resource
from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models
from agentmon_pipeline.errors import UserError


def executor() -> dg.ExecutorDefinition:
    """In process by default: the steps are short and share one DuckDB file that one process
    writes at a time, so a process per step costs seconds of start-up each and runs nothing in
    parallel (`make bench` measures both). AGENTMON_EXECUTOR=multiprocess restores Dagster's default."""
    name = os.environ.get("AGENTMON_EXECUTOR", "in_process")
    if name not in ("in_process", "multiprocess"):
        raise UserError(f"AGENTMON_EXECUTOR={name!r}: expected in_process or multiprocess")
    return dg.in_process_executor if name == "in_process" else dg.multiprocess_executor


EVALS = dg.AssetSelection.groups("evals")
MAINTENANCE = dg.AssetSelection.groups("maintenance")

agentmon_job = dg.define_asset_job(
    "agentmon_job",
    selection=dg.AssetSelection.all() - MAINTENANCE,
    description="Everything: ingest, benchmarks, marts, analytics, and the alert rules last.",
)
ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.all() - EVALS - MAINTENANCE,
    description="Ingest the landing folder, rebuild the marts and the analytics, evaluate the alert rules "
    "(what a dropped file triggers).",
)
evals_job = dg.define_asset_job(
    "evals_job",
    selection=EVALS.downstream(),
    description="Run the benchmark suites, judge them, rebuild the eval marts, evaluate the alert rules.",
)

defs = dg.Definitions(
    assets=[
        raw_telemetry,
        raw_model_prices,
        agent_registry,
        agentmon_dbt_models,
        *suite_assets,
        eval_tables,
        *analytics_assets,
        alerts,
        prometheus_textfile,
        reports_snapshot,
        retention,
    ],
    jobs=[agentmon_job, ingest_job, evals_job, alerts_job, retention_job],
    sensors=[build_landing_sensor(ingest_job)],
    schedules=[build_eval_schedule(evals_job), alerts_schedule, retention_schedule],
    resources={"dbt": dbt_resource},
    executor=executor(),
)
