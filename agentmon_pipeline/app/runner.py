"""`agentmon run` and `agentmon status`: the dbt manifest a run needs, the run (executed by
defs.headless, the same Dagster job the UI shows), and the summary of what it did, from the warehouse."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from agentmon_pipeline.config import Settings, settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.home import ensure_home
from agentmon_pipeline.ingest.landing import (
    day_range,
    first_day,
    pending_files,
    settle_seconds,
    today,
    unloaded_files,
)
from agentmon_pipeline.numbers import plain, runs_out
from agentmon_pipeline.storage import connect, table_exists

log = logging.getLogger(__name__)


def _newest_mtime(folder: Path) -> float:
    newest = 0.0
    for sub in ("models", "macros", "seeds", "tests"):
        for path in (folder / sub).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        if (folder / name).exists():
            newest = max(newest, (folder / name).stat().st_mtime)
    return newest


def prepare_dbt_manifest(force: bool = False) -> Path:
    """Build dbt's manifest (`dbt parse`) when it is missing or older than the project's files.

    `dagster dev` does this itself; headless runs and tests must, before importing definitions.
    Several processes may ask at once (a process per step imports the definitions): one parses,
    under a file lock, into a folder of its own, and the files are renamed into place, so that no
    process reads a manifest half written."""
    s = ensure_home()
    target = s.dbt_project_dir / s.dbt_target
    manifest = target / "manifest.json"
    # dbt's partial parse (reused by every run) is only valid for the warehouse it was made for
    stamp = target / ".agentmon-warehouse"

    def stale() -> bool:
        return (force or not manifest.exists() or manifest.stat().st_mtime < _newest_mtime(s.dbt_project_dir)
                or not stamp.exists() or stamp.read_text() != s.warehouse_label)  # fmt: skip

    if not stale():
        return manifest
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".parse.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stale():  # another process parsed while this one waited
            return manifest
        # in this process: the run that follows builds with dbt in this process too (a dbt
        # subprocess would import dbt a second time, about 3 s)
        from dbt.cli.main import dbtRunner

        scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
        try:
            if (target / "partial_parse.msgpack").exists():
                shutil.copy2(target / "partial_parse.msgpack", scratch / "partial_parse.msgpack")
            parsed = dbtRunner().invoke(
                ["parse", "--quiet", "--project-dir", str(s.dbt_project_dir), "--profiles-dir",
                 str(s.dbt_project_dir), "--target-path", str(scratch)]
            )  # fmt: skip
            if not parsed.success:
                raise UserError(f"dbt cannot parse the project in {s.dbt_project_dir}: {parsed.exception}")
            (scratch / ".agentmon-warehouse").write_text(s.warehouse_label)
            for name in (
                "partial_parse.msgpack",
                "semantic_manifest.json",
                ".agentmon-warehouse",
                "manifest.json",
            ):
                if (scratch / name).exists():
                    os.replace(scratch / name, target / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return manifest


@dataclass
class RunSummary:
    success: bool
    run_id: str
    files: int = 0
    duplicates: int = 0
    spans: int = 0
    metrics: int = 0
    events: int = 0
    quarantined: int = 0
    files_quarantined: int = 0
    refused: int = 0  # symlinks out of the landing folder, never read
    waiting_files: int = 0  # files in the landing folder still being written: the next run loads them
    agent_runs: int = 0
    marts_built: int = 0
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # WARN checks: recorded and shown, not failures
    alerts_open: int = 0
    notifications: int = 0
    failing: tuple[int, str | None] = (0, None)  # notifications not delivered yet, and one's error
    suites_run: int = 0
    suites_current: list[str] = field(default_factory=list)  # unchanged since their last run: not rerun
    waiting: list[str] = field(default_factory=list)  # analyses waiting for more history
    log_file: Path | None = None  # dbt's console output of the run
    seconds: float = 0.0  # the run's wall time
    outside_retention: int = 0  # records loaded by this run that the next prune deletes

    def render(self, s: Settings, command: str = "agentmon run") -> str:
        lines = [
            f"{command} {'succeeded' if self.success else 'FAILED'} in {self.seconds:.0f} s (Dagster run {self.run_id[:8]})",
            f"  files ingested      {self.files}"
            + (f" (+{self.duplicates} duplicate)" if self.duplicates else "")
            + (f" ({self.refused} refused: symlink out of the landing folder)" if self.refused else "")
            + (
                f" ({self.waiting_files} more waiting, modified in the last {settle_seconds():.0f} s when the run "
                "looked: the next run loads them)"
                if self.waiting_files
                else ""
            ),
            f"  spans loaded        {self.spans}",
            f"  metrics / events    {self.metrics} / {self.events}",
            f"  lines quarantined   {self.quarantined}"
            + (f" ({self.files_quarantined} whole file(s))" if self.files_quarantined else "")
            + ("  -> agentmon status shows why" if self.quarantined else ""),
            f"  agent runs in marts {self.agent_runs} (production)",
            f"  marts built         {self.marts_built}",
            f"  checks              {self.checks_passed} passed, {len(self.checks_failed)} failed",
        ]
        if self.outside_retention:
            lines.append(f"    {self.outside_retention} of them older than the retention window "
                         f"({s.retention_days} days): the next prune deletes them")  # fmt: skip
        for name in self.checks_failed[:10]:
            lines.append(f"    failed: {name}")
        for name in self.failed_steps[:10]:
            lines.append(f"    failed step: {name}")
        if self.suites_run or self.suites_current:
            lines.append(
                f"  benchmark suites    {self.suites_run} run"
                + (
                    f", {len(self.suites_current)} unchanged since their last run (not rerun)"
                    if self.suites_current
                    else ""
                )
            )
        if self.waiting:
            lines.append(f"  waiting for history {', '.join(self.waiting)}  -> agentmon status says how much")
        lines.append(
            f"  alerts firing       {self.alerts_open} ({self.notifications} notification(s) sent this run)"
        )
        if self.failing[0]:
            lines.append(f"  NOT DELIVERED       {self.failing[0]} notification(s), retried on later runs; "
                         f"{self.failing[1]}")  # fmt: skip
        if self.findings:
            lines.append(
                f"  findings            {len(self.findings)} (recorded and shown in the UI; not failures)"
            )
            lines.extend(f"    {finding}" for finding in self.findings[:20])
        lines.append(f"  warehouse           {s.warehouse_label}")
        if self.log_file is not None:
            lines.append(f"  dbt's output        {self.log_file}  (agentmon run --verbose prints it)")
        lines.append("  open the UI with    make ui   (http://127.0.0.1:3000)")
        return "\n".join(lines)


# The stages `agentmon run` reports, by the Dagster step that starts them
STAGES = (
    ("benchmarks", ("evals__",)),
    ("benchmarks", ("analytics__",), ("_regressions",)),
    ("ingest", ("raw_telemetry", "raw__", "agent_registry")),
    ("transform", ("agentmon_dbt_models",)),
    ("analytics", ("analytics__",)),
    ("alerts", ("alerts__",)),
    ("reports", ("reports_snapshot",)),
)
STAGE_WORDS = {
    "ingest": "ingest: the landing folder into the raw tables, great-expectations checks",
    "transform": "transform: dbt build of the marts and their tests",
    "benchmarks": "benchmarks: suites whose suite, dataset or agent changed",
    "analytics": "analytics: anomalies, forecasts, budgets, version comparisons",
    "alerts": "alerts: the rules of agentmon.yaml",
    "reports": "reports: the dashboards' snapshot",
}


def stage_of(step_key: str) -> str:
    for stage, prefixes, *suffixes in STAGES:
        if step_key.startswith(prefixes) and (not suffixes or step_key.endswith(suffixes[0])):
            return stage
    return "other"


class _LibraryNoise(logging.Filter):
    """Alembic (Dagster's storage migrations), dbt, Dagster and great-expectations talk at INFO on the console: only
    their warnings reach it (they still reach Dagster's event log, which the UI shows)."""

    NAMES = ("alembic", "dbt", "dagster", "great_expectations")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(self.NAMES)


def quiet_libraries(verbose: bool) -> None:
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _LibraryNoise) for f in handler.filters):
            handler.addFilter(_LibraryNoise())


def suites_due(con) -> tuple[dict[str, str], list[str]]:
    """The suites whose results no longer measure what they are (name -> why), and those that
    are up to date. A suite that does not load is due: its asset then fails with the reason."""
    from agentmon_pipeline.evaluation.store import why_due
    from agentmon_pipeline.evaluation.suite import list_suites, load_suite

    due, current = {}, []
    for path in list_suites():
        try:
            suite = load_suite(path)
        except UserError as exc:
            due[path.stem] = str(exc)
            continue
        reason = why_due(con, suite)
        if reason is None:
            current.append(suite.name)
        else:
            due[suite.name] = reason
    return due, current


def run_pipeline(verbose: bool = False, benchmarks: bool | None = None,
                 days: tuple[date, date] | None = None, started: float | None = None) -> RunSummary:  # fmt: skip
    """Materialize every asset once through Dagster, in this process, on the persistent instance,
    and summarise what the run did from the warehouse.

    The run covers the daily partitions of the new files' days; with `days` (first, last: a
    backfill) those days, loading only their files and rebuilding their rows of the marts.
    Benchmark suites run when they changed since their last run (`benchmarks=None`), always
    (`True`) or never (`False`); their schedule and the UI run them too. `started`: when the
    command began (time.monotonic), so that its stage lines and time count Dagster's start-up."""
    s = ensure_home(settings())
    quiet_libraries(verbose)
    prepare_dbt_manifest()
    from agentmon_pipeline.defs.headless import execute_job
    from agentmon_pipeline.defs.partitions import RELOAD, range_tags
    from agentmon_pipeline.evaluation.regression import MACHINE_NOTE, machine_dependent

    with connect(s) as con:
        before = con.execute("select coalesce(max(load_id), 0) from raw.ingested_files").fetchone()[0]
        due, current = suites_due(con)
        if days is None:  # the days of what is new
            pending = [p.path for p in pending_files(con, s.landing_dir, settle_seconds()) if not p.refused]
            tags = range_tags(*day_range(pending, s.landing_dir, first_day(), today()))
        else:
            tags = {**range_tags(*days), RELOAD: "true"}
    if benchmarks is True:
        due, current = {**due, **dict.fromkeys(current, "asked for")}, []
    elif benchmarks is False:
        due, current = {}, [*current, *due]
    began_at = datetime.now(UTC)
    summary = execute_job(s, verbose, current, tags, started)
    with connect(s, read_only=True) as con:
        # this run's loads from the landing folder (not the benchmark calls' spans)
        loads = f"select load_id from raw.ingested_files where load_id > {int(before)} and not {_benchmark_file(s)}"
        row = con.execute(
            f"""
            select count(*) filter (where status not in ('duplicate', 'refused')), count(*) filter (where status = 'duplicate'),
                   coalesce(sum(quarantined), 0), count(*) filter (where status = 'quarantined'),
                   count(*) filter (where status = 'refused')
            from raw.ingested_files where load_id in ({loads})
            """
        ).fetchone()
        summary.files, summary.duplicates, summary.quarantined, summary.files_quarantined, summary.refused = (
            map(int, row)
        )
        summary.spans, summary.metrics, summary.events = (
            int(con.execute(f"select count(*) from {table} where load_id in ({loads})").fetchone()[0])
            for table in ("raw.spans", "raw.metrics", "raw.events")
        )
        # production runs: the benchmark suites' calls are in the marts too, flagged is_benchmark
        summary.agent_runs = int(
            _scalar(con, "count(*) filter (where not is_benchmark)", "marts", "fct_agent_runs") or 0
        )
        summary.waiting = sorted({line.split()[0] for line in waiting_analyses(con)})
        if days is None:  # still being written, or settled during the run (after its scan): next run's
            settled, writing = unloaded_files(con, s.landing_dir, settle_seconds())
            summary.waiting_files = writing + sum(not p.refused for p in settled)
        summary.alerts_open = int(con.execute(
            "select count(*) from alerts.alerts where state = 'firing'").fetchone()[0])  # fmt: skip
        summary.notifications = int(con.execute(
            "select count(*) from alerts.deliveries where sent_at >= ?", [began_at]).fetchone()[0])  # fmt: skip
        summary.failing = failing_deliveries(con)
        regressed = con.execute(
            """
            select g.suite, g.candidate, g.baseline, g.metric, g.effect, g.relative,
                   g.evaluator, r.repeats
            from analytics.eval_regressions g left join evals.runs r using (run_id)
            where g.verdict = 'regressed' order by g.suite, g.candidate, g.metric
            """
        ).fetchall()
        versions = con.execute(
            """
            select agent_id, candidate_version, baseline_version, metric, effect from analytics.version_comparisons
            where verdict = 'regressed' order by agent_id, switched_at, metric
            """
        ).fetchall()
        budgets = con.execute(
            """
            select coalesce(agent_id, 'total'), status, spend_to_date, budget_usd, projected_month_end, runs_out_on
            from analytics.budget_burn where status <> 'ok' order by 1
            """
        ).fetchall()
        recent = con.execute(
            """
            select coalesce(agent_id, 'all agents'), metric, bucket_start, value, expected, direction
            from analytics.anomalies
            where bucket_start >= (select max(bucket_start) from analytics.anomalies) - interval '24 hour'
            order by abs(score) desc limit 5
            """
        ).fetchall()
    deployments: dict[tuple, list[str]] = {}  # one line per deployment, however many of its metrics regressed
    for agent, cand, base, metric, effect in versions:
        shown = f"{effect:+.1%}" if metric != "success_rate" else f"{effect:+.3f}"
        deployments.setdefault((agent, cand, base), []).append(f"{metric} ({shown})")
    summary.findings += [
        f"production {agent}: version {cand} regressed on {', '.join(metrics)} against {base}"
        for (agent, cand, base), metrics in deployments.items()
    ]
    summary.findings += [
        f"budget {scope}: {status}, {spent:.2f} of {budget:.2f} USD spent, month-end projected {projected:.2f}"
        + runs_out(day, datetime.now(UTC).date())
        for scope, status, spent, budget, projected, day in budgets
    ]
    summary.findings += [
        f"anomaly {scope}: {metric} {direction} at {when:%Y-%m-%d %H:00} ({plain(value)} against {plain(expected)} expected)"
        for scope, metric, when, value, expected, direction in recent
    ]
    summary.findings += [
        f"benchmark {suite}: {cand} regressed on {metric} against {base} "
        f"({f'{effect:+.1%}' if relative else f'{effect:+.3f}'})"
        + (f": {MACHINE_NOTE}" if machine_dependent(evaluator, repeats) else "")
        for suite, cand, base, metric, effect, relative, evaluator, repeats in regressed
    ]
    return summary


def _scalar(con, expression: str, schema: str, table: str):
    """`expression` over one table; None when the table was never built (first run failed)."""
    if not table_exists(con, schema, table):
        return None
    return con.execute(f"select {expression} from {schema}.{table}").fetchone()[0]


def _benchmark_file(s: Settings) -> str:
    """SQL: a ledger row of a file the benchmark suites wrote (their calls' spans)."""
    prefix = str(s.benchmarks_dir).replace("'", "''") + "/"
    return f"substr(file_path, 1, {len(prefix)}) = '{prefix}'"  # what every engine reads


def status_report() -> str:
    """What is in the warehouse: files, spans, quarantine, runs, last update."""
    s = settings()
    with connect(s, read_only=True, timeout=float(os.environ.get("AGENTMON_STATUS_WAIT", "30"))) as con:
        files = con.execute(
            f"""
            select count(*), count(*) filter (where status = 'duplicate'), count(*) filter (where status = 'quarantined'),
                   coalesce(sum(lines), 0), coalesce(sum(loaded), 0), coalesce(sum(quarantined), 0), max(ingested_at),
                   count(*) filter (where status = 'refused'), count(*) filter (where {_benchmark_file(s)})
            from raw.ingested_files
            """
        ).fetchone()
        spans = con.execute(
            "select count(*), min(start_time), max(start_time) from raw.spans where load_id not in "
            f"(select load_id from raw.ingested_files where {_benchmark_file(s)})"
        ).fetchone()
        runs = _scalar(con, "count(*) filter (where not is_benchmark)", "marts", "fct_agent_runs")
        agents = _scalar(con, "count(*)", "marts", "dim_agents")
        cost = _scalar(con, "sum(cost_usd)", "marts", "fct_agent_runs")
        # each reason with its files (the first by name, and how many): which file to look at
        reasons = con.execute(
            "select reason, count(*), count(distinct file_path), min(file_path) from raw.quarantine "
            "group by 1 order by 2 desc, 1"
        ).fetchall()
        metrics = con.execute("select count(*) from raw.metrics").fetchone()[0]
        events = con.execute("select count(*) from raw.events").fetchone()[0]
        waiting = waiting_analyses(con)
        failing = failing_deliveries(con)
        pruned = con.execute(
            "select max(pruned_at), coalesce(sum(rows_removed), 0) from raw.retention_log "
            "where pruned_at = (select max(pruned_at) from raw.retention_log)"
        ).fetchone()
    if s.retention_days:
        retention = f"keeps {s.retention_days} days of detail (MONITORING_RETENTION_DAYS); " + (
            f"last prune {pruned[0]:%Y-%m-%d %H:%M} UTC removed {pruned[1]} rows"
            if pruned[0]
            else "never pruned yet"
        )
    else:
        retention = "keeps everything (MONITORING_RETENTION_DAYS is not set)" + (
            f"; last prune {pruned[0]:%Y-%m-%d %H:%M} UTC removed {pruned[1]} rows" if pruned[0] else ""
        )
    out = [
        f"warehouse      {s.warehouse_label}",
        f"landing folder {s.landing_dir}",
        f"files          {files[0] - files[8]} in the ledger ({files[1]} duplicate, {files[2]} quarantined whole, {files[7]} refused)"
        + (f", and {files[8]} of benchmark calls" if files[8] else ""),
        f"lines          {files[3]} = {files[4]} loaded + {files[5]} quarantined",
        f"spans          {spans[0]} (from your files; benchmark calls not counted)"
        + (f" from {spans[1]:%Y-%m-%d %H:%M} to {spans[2]:%Y-%m-%d %H:%M} UTC" if spans[0] else ""),
        f"metrics/events {metrics} / {events}",
        f"agent runs     {f'{runs} (production)' if runs is not None else 'none yet (the marts are built by agentmon run)'}",
        f"agents         {agents if agents is not None else '-'}",
        f"cost (USD)     {plain(float(cost)) if cost is not None else '-'}",  # a first file's $0.0048 is not 0.0
        f"last update    {files[6]:%Y-%m-%d %H:%M:%S} UTC" if files[6] else "last update    never",
        f"retention      {retention}",
    ]
    if reasons:
        out.append("top quarantine reasons:")
        out += [
            f"  {n:>6}  {reason}  ({Path(first).name}"
            + (f" and {files - 1} more file(s))" if files > 1 else ")")
            for reason, n, files, first in reasons[:5]
        ]
        if len(reasons) > 5:
            out.append(
                f"  and {len(reasons) - 5} more reason(s): select reason, count(*) from raw.quarantine group by 1"
            )
    if failing[0]:
        out.append(
            f"notifications  {failing[0]} not delivered yet (retried on later runs); latest: {failing[1]}"
        )
    if waiting:
        out.append("analyses waiting for more history:")
        out += [f"  {line}" for line in waiting]
    return "\n".join(out)


def failing_deliveries(con) -> tuple[int, str | None]:
    """Notifications that failed and wait for a retry (alerts.deliveries), and the latest error:
    a channel that cannot send (a secret not set, a host down) is said where the user looks."""
    if not table_exists(con, "alerts", "deliveries"):
        return 0, None
    failing = "from alerts.deliveries where state = 'pending' and last_error is not null"
    count = int(con.execute(f"select count(*) {failing}").fetchone()[0])
    if not count:
        return 0, None
    latest = con.execute(f"select channel, last_error {failing} order by created_at desc limit 1").fetchone()
    return count, f"{latest[0]}: {latest[1]}"


def waiting_analyses(con) -> list[str]:
    """Why each analysis that could not judge a scope waits (analytics.readiness), one line each."""
    if not table_exists(con, "analytics", "readiness"):
        return []
    rows = con.execute(
        "select analysis, coalesce(agent_id, 'all agents'), has, needs, unit, reason from analytics.readiness "
        "where status = 'waiting' order by analysis, agent_id nulls first"
    ).fetchall()
    return [
        f"{analysis:<20} {scope}: has {has} of the {needs} {unit} it needs"
        for analysis, scope, has, needs, unit, _ in rows
    ]
