"""Resources shared by the Dagster definitions: the dbt project and its CLI."""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import version as installed_version

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from agentmon_pipeline.app.runner import prepare_dbt_manifest
from agentmon_pipeline.config import settings
from agentmon_pipeline.home import ensure_home

ensure_home(settings())  # DAGSTER_HOME, dbt's warehouse path and telemetry switches, before dbt runs

dbt_project = DbtProject(
    project_dir=settings().dbt_project_dir,
    profiles_dir=settings().dbt_project_dir,
    target_path=settings().dbt_target,
)
# The manifest is rebuilt (`dbt parse`) only when the SQL changed since the last parse: not by every
# run worker of `dagster dev`, as dagster-dbt's prepare_if_dev would (5 s per run).
prepare_dbt_manifest()


class AgentmonDbtCli(DbtCliResource):
    """dagster-dbt asks `dbt --version` in a subprocess (about 5 s here) on every run; the dbt that
    runs is the dbt-core installed beside us, so its package version answers the same question."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args) -> None:
        """No adapter: dagster-dbt loads dbt's profile, project and adapter in this process before every
        invocation (about 1 s) only for its fetch_row_counts / fetch_column_metadata, which agentmon
        does not use (it counts the rows itself once dbt has let go of the warehouse)."""


dbt_resource = AgentmonDbtCli(project_dir=dbt_project)
