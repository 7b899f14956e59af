"""The Dagster code location: assembles the definitions in defs/, nothing else."""

import dagster as dg

from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
from agentmon_pipeline.defs.ingest.sensors import build_landing_sensor
from agentmon_pipeline.defs.resources import dbt_resource
from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

agentmon_job = dg.define_asset_job(
    "agentmon_job",
    selection=dg.AssetSelection.all(),
    description="Ingest the landing folder and rebuild the marts.",
)

defs = dg.Definitions(
    assets=[raw_telemetry, raw_model_prices, agentmon_dbt_models],
    jobs=[agentmon_job],
    sensors=[build_landing_sensor(agentmon_job)],
    resources={"dbt": dbt_resource},
)
