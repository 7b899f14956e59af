"""Resources shared by the Dagster definitions: the dbt project and its CLI."""

from __future__ import annotations

from dagster_dbt import DbtCliResource, DbtProject

from agentmon_pipeline.config import ensure_home, settings

ensure_home(settings())  # DAGSTER_HOME, dbt's warehouse path and telemetry switches, before dbt runs

dbt_project = DbtProject(
    project_dir=settings().dbt_project_dir,
    profiles_dir=settings().dbt_project_dir,
)
# Under `dagster dev` the manifest is rebuilt from the SQL; `agentmon run` and the tests prepare it
# themselves before importing the definitions (agentmon_pipeline.runner.prepare_dbt_manifest).
dbt_project.prepare_if_dev()

dbt_resource = DbtCliResource(project_dir=dbt_project)
