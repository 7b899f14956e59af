"""Transform: `dbt build` of the dbt project (staging -> intermediate -> marts), tests as checks."""

import shutil
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from agentmon_pipeline.config import ensure_home, settings
from agentmon_pipeline.defs.resources import dbt_project
from agentmon_pipeline.runstate import models_digest
from agentmon_pipeline.warehouse import connect, warehouse_lock


class AgentmonDbtTranslator(DagsterDbtTranslator):
    """Models are keyed <schema>/<name> (marts/fct_agent_runs); sources keep raw/<table>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=AgentmonDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
)
def agentmon_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    s = ensure_home(settings())  # dbt finds the warehouse through config.dbt_environment
    with warehouse_lock(s):
        digest = models_digest(s.dbt_project_dir)
        with connect(s) as con:
            built_with = con.execute(
                "select models_sha256 from raw.dbt_build_state order by built_at desc limit 1"
            ).fetchall()
            built_with = built_with[0][0] if built_with else None
        # Incremental models keep what older SQL computed: after an upgrade of the models, rebuild
        # them from raw once (raw keeps everything within the retention window).
        # dbt's unit tests check the models' SQL on fixed inputs: they belong to development and
        # CI (make test runs them), not to every build over production data, as dbt's docs advise
        args = ["build", "--exclude-resource-type", "unit_test"]
        if built_with != digest:
            args.append("--full-refresh")
            context.log.info("the dbt models changed since the last build: full refresh of the marts")
        invocation = dbt.cli(args, context=context)
        events = list(invocation.stream())
        # dagster-dbt gives every invocation its own target folder; they would pile up under cron.
        shutil.rmtree(invocation.target_path, ignore_errors=True)
        # Row counts once dbt has let go of the file (dagster-dbt's own fetch_row_counts keeps a
        # connection open in this process, which DuckDB's single-writer lock does not forgive).
        keys = {
            event.output_name: context.asset_key_for_output(event.output_name)
            for event in events
            if isinstance(event, dg.Output)
        }
        with connect(s) as con:
            counts = {name: table_row_count(con, key.path) for name, key in keys.items()}
            con.execute("insert into raw.dbt_build_state values (?, now())", [digest])
    for event in events:
        if isinstance(event, dg.Output) and counts.get(event.output_name) is not None:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[event.output_name]})
        yield event


def table_row_count(con, path: list[str]) -> int | None:
    if len(path) != 2:
        return None
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", path
    ).fetchone()
    if not row[0]:
        return None
    return int(con.execute(f'select count(*) from "{path[0]}"."{path[1]}"').fetchone()[0])
