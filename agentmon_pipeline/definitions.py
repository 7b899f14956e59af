"""The Dagster code location: assembles the definitions in defs/, nothing else."""

import dagster as dg

from agentmon_pipeline.defs.analytics.assets import analytics_assets
from agentmon_pipeline.defs.evals.assets import eval_tables, suite_assets
from agentmon_pipeline.defs.evals.schedules import build_eval_schedule
from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
from agentmon_pipeline.defs.ingest.sensors import build_landing_sensor
from agentmon_pipeline.defs.resources import dbt_resource
from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

EVALS = dg.AssetSelection.groups("evals")

agentmon_job = dg.define_asset_job(
    "agentmon_job",
    selection=dg.AssetSelection.all(),
    description="Everything: ingest the landing folder, run the benchmark suites, rebuild the marts.",
)
ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.all() - EVALS,
    description="Ingest the landing folder and rebuild the marts (what a dropped file triggers).",
)
evals_job = dg.define_asset_job(
    "evals_job",
    selection=EVALS.downstream(),
    description="Run every benchmark suite, judge it, and rebuild the eval marts.",
)

defs = dg.Definitions(
    assets=[
        raw_telemetry,
        raw_model_prices,
        agentmon_dbt_models,
        *suite_assets,
        eval_tables,
        *analytics_assets,
    ],
    jobs=[agentmon_job, ingest_job, evals_job],
    sensors=[build_landing_sensor(ingest_job)],
    schedules=[build_eval_schedule(evals_job)],
    resources={"dbt": dbt_resource},
)
