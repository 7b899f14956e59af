"""The Dagster code location: assembles the definitions in defs/, nothing else."""

import dagster as dg

from agentmon_pipeline.defs.alerting.assets import alerts, alerts_job, alerts_schedule, build_alerts_sensor
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

EVALS = dg.AssetSelection.groups("evals")
ALERTING = dg.AssetSelection.groups("alerting")
MAINTENANCE = dg.AssetSelection.groups("maintenance")

agentmon_job = dg.define_asset_job(
    "agentmon_job",
    selection=dg.AssetSelection.all() - MAINTENANCE,
    description="Everything: ingest, benchmarks, marts, analytics, and the alert rules last.",
)
ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.all() - EVALS - ALERTING - MAINTENANCE,
    description="Ingest the landing folder, rebuild the marts and the analytics (what a dropped file triggers).",
)
evals_job = dg.define_asset_job(
    "evals_job",
    selection=EVALS.downstream() - ALERTING,
    description="Run every benchmark suite, judge it, and rebuild the eval marts.",
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
    sensors=[build_landing_sensor(ingest_job), build_alerts_sensor([ingest_job, evals_job])],
    schedules=[build_eval_schedule(evals_job), alerts_schedule, retention_schedule],
    resources={"dbt": dbt_resource},
)
