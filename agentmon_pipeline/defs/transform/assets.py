"""Transform: `dbt build` of the dbt project (staging -> intermediate -> marts), tests as checks."""

import hashlib
import os
import re
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from agentmon_pipeline.app.runstate import models_digest, project_files
from agentmon_pipeline.config import settings
from agentmon_pipeline.defs.partitions import reload_days, reload_vars
from agentmon_pipeline.defs.resources import dbt_project
from agentmon_pipeline.home import ensure_home
from agentmon_pipeline.storage import connect, table_exists, warehouse_lock


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
    s = ensure_home(settings())  # dbt finds the warehouse through storage.profiles.dbt_environment
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
        elif (days := reload_days(context)) is not None:
            args += ["--vars", reload_vars(days)]
            context.log.info(f"reloading {days[0]} to {days[1]}: the marts rebuild those days' rows")
        events = build_in_process(context, dbt, args)
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


def build_in_process(context: dg.AssetExecutionContext, dbt: DbtCliResource, args: Sequence[str]) -> list:
    """`dbt <args>` in this process (dbt's Python API, dbtRunner), as Dagster events.

    dagster-dbt starts dbt as a subprocess: a new interpreter that imports dbt and loads the
    project (about 3 s here) before its first model. In this process dbt is already imported,
    and the partial parse is reused. The selection (a subset of the models picked in the UI) and
    the events are dagster-dbt's own; dbt's console output goes to this step's stdout."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    s = settings()
    params = get_updated_cli_invocation_params_for_context(
        context=context, manifest={}, dagster_dbt_translator=AgentmonDbtTranslator()
    )
    # dagster-dbt's own project folder, or its copy with a selectors file for a large subset
    project_dir = Path(params.dbt_project.project_dir if params.dbt_project else dbt.project_dir)
    prepared = Path(dbt.project_dir) / s.dbt_target
    target = prepared / f"run-{context.run.run_id[:8]}-{uuid.uuid4().hex[:7]}"
    target.mkdir(parents=True)
    if (prepared / "partial_parse.msgpack").exists():
        shutil.copy2(prepared / "partial_parse.msgpack", target / "partial_parse.msgpack")
    results: list[dict] = []
    errors: list[str] = []

    def collect(event) -> None:
        info = event.info
        # dbt's closing summary: "Failure in test x (path)" then what it found, or "Runtime
        # Error in model x (path) Binder Error: …" in one message
        if info.name == "RunResultFailure":
            errors.append(info.msg)
        elif info.name == "RunResultError" and info.msg:
            if errors and errors[-1].startswith("Failure in"):
                errors[-1] += ": " + info.msg
            else:
                errors.append(info.msg)
        if info.name in ("LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"):
            results.append(msg_to_dict(event))

    selection = list(params.selection_args)
    if params.indirect_selection:
        selection += ["--indirect-selection", params.indirect_selection]
    # plain text: dbt's output goes to a log file (agentmon run) or the step's compute log (the UI)
    if args[0] in ("build", "run", "test", "seed") and AST_RACE:
        selection += ["--threads", "1"]
    where = ["--no-use-colors", "--project-dir", str(project_dir), "--profiles-dir", str(dbt.profiles_dir or project_dir),
             "--target-path", str(target), "--log-path", str(target)]  # fmt: skip
    try:
        manifest = _parsed_project(where, project_dir, Path(dbt.profiles_dir or project_dir), args)
        outcome = dbtRunner(manifest=manifest, callbacks=[collect]).invoke([*args, *where, *selection])
        if not outcome.success:
            # the first line is what `agentmon run` shows: the first error, on one line
            detail = [" ".join(error.split()) for error in errors] or [
                str(outcome.exception or "no error given")
            ]
            raise DagsterDbtCliRuntimeError(description=f"dbt {args[0]} failed: " + "\n".join(detail))
        events = []
        for raw in results:
            message = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
            events.extend(
                message.to_default_asset_events(
                    manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
                    context=context, target_path=target, project=params.dbt_project,
                )
            )  # fmt: skip
    finally:
        _let_go_of_the_warehouse()
        shutil.rmtree(target, ignore_errors=True)  # one per run: they would pile up under cron
    return events


# dbt's parse of the project, kept for this process's next builds: dbtRunner(manifest=...), dbt's way
# to reuse it, spares each build reading and writing the parse (about 0.5 s a build of little data,
# for a process that builds many times: the tests, a long-lived process). Its key is all a parse
# reads: the project's files, the profiles, and the environment variables they name.
_PARSED: dict[tuple, Any] = {}
_ENV_VAR = re.compile(rb"""env_var\(\s*['"](\w+)['"]""")


def _parsed_project(where: list[str], project_dir: Path, profiles_dir: Path, args: Sequence[str]):
    """The project's parsed manifest, from this process's last parse when nothing it read has
    changed; None (the build parses) when --vars are given or the parse fails (the build then
    reports why, as it always has)."""
    from dbt.cli.main import dbtRunner

    if "--vars" in args:
        return None
    files = [profiles_dir / "profiles.yml", project_dir / "dbt_project.yml",
             *project_files(project_dir, ("models", "macros", "seeds", "tests", "snapshots", "analyses"))]  # fmt: skip
    digest, names = hashlib.sha256(str(project_dir).encode()), set()
    for path in files:
        if path.is_file():
            data = path.read_bytes()
            digest.update(str(path).encode() + b"\0" + data)
            names.update(name.decode() for name in _ENV_VAR.findall(data))
    key = (digest.hexdigest(), tuple((n, os.environ.get(n)) for n in sorted(names)),
           tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("DBT_"))))  # fmt: skip
    if key not in _PARSED:
        parsed = dbtRunner().invoke(["parse", "--quiet", *where])
        if not parsed.success:
            return None
        _PARSED.clear()
        _PARSED[key] = parsed.result
    return _PARSED[key]


# CPython before 3.11.8 and 3.12.2 can fail `ast.literal_eval` when two threads run it at once
# ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905, fixed by #113035);
# dbt's Jinja calls it for rendered values, so dbt's threads in one process fail a model now and
# then (seen once in `make test` on 3.11.7). There the in-process build uses one thread (DuckDB
# still uses every core for each query).
AST_RACE = sys.version_info < (3, 11, 8) or (3, 12) <= sys.version_info < (3, 12, 2)


def _let_go_of_the_warehouse() -> None:
    """dbt-duckdb keeps its in-memory database, with the warehouse attached, open for the next
    invocation in the process; DuckDB allows the file one holder, and the next steps open it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def table_row_count(con, path: list[str]) -> int | None:
    if len(path) != 2:
        return None
    if not table_exists(con, *path):
        return None
    return int(con.execute(f'select count(*) from "{path[0]}"."{path[1]}"').fetchone()[0])
