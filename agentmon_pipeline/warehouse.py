"""The DuckDB warehouse: connections, the cross-process lock, and schema migrations.

DuckDB lets one process write a database file at a time, and a reader cannot open the file while
a writer has it. Every agentmon process (a Dagster run, the CLI, dbt under Dagster) therefore
takes an advisory lock on `$AGENTMON_HOME/warehouse.lock` first: exclusive to write, shared to
read. A process that finds the warehouse busy waits, then says so in one line, and never crashes
on DuckDB's own lock error. Connections are opened per unit of work and closed after it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agentmon_pipeline.config import Settings
from agentmon_pipeline.errors import WarehouseBusy, WarehouseMissing

SCHEMAS = ("raw", "staging", "intermediate", "marts", "evals", "analytics", "alerts", "registry")

# Each migration moves the warehouse from version N-1 to N. Never edit a released one: add one.
MIGRATIONS: list[list[str]] = [
    [
        *(f"create schema if not exists {name}" for name in SCHEMAS),
        "create sequence if not exists raw.load_id_seq start 1",
        """
        create table if not exists raw.ingested_files (
            load_id bigint primary key,
            file_path varchar not null,
            file_name varchar not null,
            sha256 varchar not null,
            bytes bigint not null,
            mtime_ns bigint,
            format varchar,
            status varchar not null,      -- loaded | partial | quarantined | duplicate | empty | refused
            lines bigint not null,        -- records found: non-blank lines of a JSONL file
            loaded bigint not null,
            quarantined bigint not null,
            reason varchar,
            duplicate_of bigint,
            ingested_at timestamptz not null
        )
        """,
        """
        create table if not exists raw.quarantine (
            load_id bigint not null,
            file_path varchar not null,
            sha256 varchar not null,
            line_number bigint,           -- null when the whole file is quarantined
            reason varchar not null,
            raw_line varchar,
            quarantined_at timestamptz not null
        )
        """,
        """
        create table if not exists raw.spans (
            trace_id varchar not null,
            span_id varchar not null,
            parent_span_id varchar,
            name varchar not null,
            kind varchar not null,
            start_time timestamptz not null,
            end_time timestamptz not null,
            duration_ms double not null,
            status varchar not null,
            error_type varchar,
            error_message varchar,
            agent_id varchar,
            agent_name varchar,
            agent_version varchar,
            session_id varchar,
            user_id varchar,
            model varchar,
            provider varchar,
            input_tokens bigint,
            output_tokens bigint,
            total_tokens bigint,
            cached_input_tokens bigint,
            cache_creation_input_tokens bigint,
            reasoning_tokens bigint,
            cost_usd double,
            tool_name varchar,
            retry_count integer,
            input varchar,
            output varchar,
            attributes json,
            resource json,
            source_format varchar not null,
            load_id bigint not null,
            line_number bigint
        )
        """,
        """
        create table if not exists raw.metrics (
            name varchar not null,
            value double not null,
            time timestamptz not null,
            metric_kind varchar not null,
            unit varchar,
            labels json,
            agent_id varchar,
            agent_version varchar,
            load_id bigint not null,
            line_number bigint
        )
        """,
        """
        create table if not exists raw.events (
            event_id varchar not null,
            name varchar not null,
            time timestamptz not null,
            trace_id varchar,
            span_id varchar,
            agent_id varchar,
            agent_version varchar,
            attributes json,
            load_id bigint not null,
            line_number bigint
        )
        """,
        """
        create table if not exists raw.model_prices (
            model varchar not null,
            provider varchar,
            matched_model_id varchar,
            input_usd_per_mtok double,
            cached_input_usd_per_mtok double,
            cache_write_usd_per_mtok double,
            output_usd_per_mtok double,
            effective_from timestamptz not null,
            source varchar not null,
            resolved_at timestamptz not null
        )
        """,
    ],
    [
        # the dbt models the marts were last built with (see defs/transform/assets.py)
        "create table if not exists raw.dbt_build_state (models_sha256 varchar not null, built_at timestamptz not null)",
    ],
    [
        # benchmarks (evaluation/): one row per suite run, one per call and evaluator
        """
        create table if not exists evals.runs (
            run_id varchar primary key,
            suite varchar not null,
            suite_path varchar,
            mode varchar not null,          -- agent | replay
            versions varchar[] not null,
            baseline varchar not null,
            repeats integer not null,
            cases integer not null,
            calls integer not null,
            failed_calls integer not null,
            started_at timestamptz not null,
            finished_at timestamptz not null
        )
        """,
        """
        create table if not exists evals.results (
            run_id varchar not null,
            suite varchar not null,
            case_id varchar not null,
            version varchar not null,
            repeat integer not null,
            evaluator varchar not null,
            score double,
            passed boolean,
            latency_ms double,
            error varchar,
            input_tokens bigint,
            output_tokens bigint,
            cost_usd double
        )
        """,
        # the latest verdicts of each suite: one row per suite x candidate x metric
        """
        create table if not exists analytics.eval_regressions (
            suite varchar not null,
            run_id varchar not null,
            baseline varchar not null,
            candidate varchar not null,
            metric varchar not null,
            evaluator varchar not null,
            statistic varchar not null,
            test varchar not null,
            higher_is_better boolean not null,
            relative boolean not null,
            baseline_value double,
            candidate_value double,
            n integer not null,
            effect double,
            ci_low double,
            ci_high double,
            p_value double,
            p_adjusted double,
            verdict varchar not null,
            computed_at timestamptz not null
        )
        """,
    ],
    [
        # production analytics (analytics/): each table is recomputed whole by its asset
        """
        create table if not exists analytics.anomalies (
            bucket_start timestamptz not null,
            agent_id varchar,               -- null: all agents together
            metric varchar not null,
            value double,
            expected double,
            score double not null,
            direction varchar not null,     -- up | down
            n bigint,                       -- runs (or points) in the bucket
            method varchar not null,
            note varchar,
            detected_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.forecasts (
            agent_id varchar,               -- null: all agents together
            metric varchar not null,
            target_date date not null,
            yhat double,
            yhat_lower_80 double,
            yhat_upper_80 double,
            yhat_lower_95 double,
            yhat_upper_95 double,
            model varchar not null,
            model_reason varchar,
            history_days integer,
            backtest_mase double,
            backtest_mase_seasonal_naive double,
            generated_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.budget_burn (
            agent_id varchar,               -- null: the total budget
            month date not null,
            budget_usd double not null,
            spend_to_date double not null,
            projected_month_end double,
            projected_lower_80 double,
            projected_upper_80 double,
            projected_lower_95 double,
            projected_upper_95 double,
            runs_out_on date,
            status varchar not null,        -- ok | at_risk | over
            as_of date not null,
            forecast_model varchar,
            computed_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.version_comparisons (
            agent_id varchar not null,
            baseline_version varchar not null,
            candidate_version varchar not null,
            switched_at timestamptz,
            window_hours double,
            metric varchar not null,
            n_baseline integer not null,
            n_candidate integer not null,
            baseline_value double,
            candidate_value double,
            effect double,
            ci_low double,
            ci_high double,
            p_value double,
            p_adjusted double,
            verdict varchar not null,
            test varchar,
            computed_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.correlations (
            agent_id varchar,
            granularity varchar not null,
            metric_a varchar not null,
            metric_b varchar not null,
            method varchar not null,
            r double,
            p_value double,
            n integer not null,
            computed_at timestamptz not null
        )
        """,
    ],
    [
        # alerting (alerting/): alerts with their state, the delivery outbox, the audit log
        """
        create table if not exists alerts.alerts (
            alert_id varchar primary key,
            fingerprint varchar not null,   -- rule | agent | metric
            rule varchar not null,
            kind varchar not null,
            severity varchar not null,
            state varchar not null,         -- firing | acknowledged | resolved
            agent_id varchar,
            metric varchar,
            value double,
            threshold double,
            condition varchar,
            message varchar,
            first_seen_at timestamptz not null,
            last_seen_at timestamptz not null,
            fire_count integer not null,
            escalation_level integer not null,
            notified boolean not null,
            acknowledged_by varchar,
            acknowledged_at timestamptz,
            ack_note varchar,
            resolved_at timestamptz
        )
        """,
        """
        create table if not exists alerts.deliveries (
            delivery_id varchar primary key,
            alert_id varchar not null,
            channel varchar not null,
            event varchar not null,         -- firing | resolved | escalated
            payload json not null,          -- what is sent, without secrets
            state varchar not null,         -- pending | sent
            attempts integer not null,
            last_error varchar,
            next_attempt_at timestamptz not null,
            created_at timestamptz not null,
            sent_at timestamptz
        )
        """,
        """
        create table if not exists alerts.audit_log (
            logged_at timestamptz not null,
            alert_id varchar,
            action varchar not null,
            actor varchar,
            detail varchar
        )
        """,
    ],
    [
        # agent registry (registry.py): agents, their versions, and every change to them
        """
        create table if not exists registry.agents (
            agent_id varchar primary key,
            name varchar,
            description varchar,
            owner varchar,
            capabilities json,              -- a list of strings
            registered_at timestamptz not null,
            updated_at timestamptz not null
        )
        """,
        """
        create table if not exists registry.agent_versions (
            agent_id varchar not null,
            agent_version varchar not null,
            description varchar,
            config json,                    -- an object; a version's config never changes
            status varchar not null,        -- registered | active | inactive | rolled_back
            registered_at timestamptz not null,
            deployed_at timestamptz,        -- when it last became active
            primary key (agent_id, agent_version)
        )
        """,
        "create sequence if not exists registry.audit_seq start 1",
        """
        create table if not exists registry.audit_log (
            seq bigint primary key,
            logged_at timestamptz not null,     -- when the change was recorded
            effective_at timestamptz not null,  -- when it took effect (an activation may be backdated)
            actor varchar,
            action varchar not null,    -- register_agent | update_agent | register_version | activate | rollback
            agent_id varchar not null,
            agent_version varchar,
            previous_version varchar,   -- the version that was active before an activation or rollback
            detail json
        )
        """,
    ],
    [
        # which analyses could judge which scope, and how much history the others wait for
        """
        create table if not exists analytics.readiness (
            analysis varchar not null,      -- anomalies | forecasts | budget_burn | version_comparisons | correlations
            agent_id varchar,               -- null: all agents together
            status varchar not null,        -- ready | waiting
            has bigint not null,
            needs bigint not null,
            unit varchar not null,          -- complete hours | complete days | versions
            reason varchar,                 -- why it waits, e.g. "forecasts need 3 complete days of history, ..."
            computed_at timestamptz not null
        )
        """,
    ],
    [
        # what a benchmark run measured (suite, dataset, agent code): suites rerun only when it changes
        "alter table evals.runs add column if not exists fingerprint varchar",
        # retention: what pruning removed, per file of the ledger and per pass
        "alter table raw.ingested_files add column if not exists pruned bigint default 0",
        "alter table raw.ingested_files add column if not exists pruned_at timestamptz",
        """
        create table if not exists raw.retention_log (
            pruned_at timestamptz not null,
            retention_days integer not null,
            cutoff timestamptz not null,
            table_name varchar not null,
            rows_removed bigint not null
        )
        """,
    ],
    [
        # every benchmark verdict with the change its suite could have found (80% power), and the
        # clusters it was judged over when the dataset has them
        "alter table analytics.eval_regressions add column if not exists mde double",
        "alter table analytics.eval_regressions add column if not exists clusters integer",
    ],
    [
        # forecasts: how the backtest's folds judged the intervals, and what that did to them
        "alter table analytics.forecasts add column if not exists backtest_folds integer",
        # share of the backtest's held-out days inside the model's own intervals (before widening)
        "alter table analytics.forecasts add column if not exists backtest_coverage_80 double",
        "alter table analytics.forecasts add column if not exists backtest_coverage_95 double",
        # the factor the issued intervals were widened (or, by a tenth at most, narrowed) by
        "alter table analytics.forecasts add column if not exists interval_widening_80 double",
        "alter table analytics.forecasts add column if not exists interval_widening_95 double",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
_held: dict[str, int] = {}


def _lock_timeout() -> float:
    return float(os.environ.get("AGENTMON_LOCK_TIMEOUT", "600"))


@contextmanager
def warehouse_lock(
    settings: Settings, exclusive: bool = True, timeout: float | None = None
) -> Iterator[None]:
    """Hold the cross-process warehouse lock; re-entrant within one process. PostgreSQL needs none:
    its transactions let any number of processes read and write at once."""
    if settings.backend == "postgres":
        yield
        return
    key = str(settings.lock_path)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    settings.lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (_lock_timeout() if timeout is None else timeout)
    with open(settings.lock_path, "a+") as handle:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"the warehouse {settings.warehouse_label} is busy: another agentmon process is "
                        "writing to it; try again when it has finished"
                    ) from None
                time.sleep(0.2)
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("set TimeZone = 'UTC'")
            return con
        except duckdb.ConnectionException:
            if not read_only:
                raise
            # This process already has the file open read-write (DuckDB keeps one instance per
            # file and process): share that instance instead of a second configuration.
            read_only = False
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {path} is held by another program (DuckDB: {str(exc).splitlines()[0]})"
                ) from None
            time.sleep(0.2)


@contextmanager
def connect(
    settings: Settings, read_only: bool = False, timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one unit of work, under the warehouse lock; migrated on first write.

    On PostgreSQL (MONITORING_DB_URL=postgresql://...) it is a `postgres.PgConnection`: the same
    calls, the same SQL (translated), no lock. A read-only connection to a warehouse that does
    not exist raises WarehouseMissing and creates nothing (no folder, no lock file)."""
    if read_only and settings.backend == "duckdb" and not settings.warehouse_path.exists():
        raise _missing(settings)
    if not read_only and settings.warehouse_path is not None:
        settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)  # and nothing else of the home
    if settings.backend == "postgres":
        from agentmon_pipeline import postgres

        pg = postgres.PgConnection(postgres.connect(settings.warehouse_url, settings.warehouse_ssl))
        try:
            if not read_only:
                postgres.migrate(pg.pg)
            elif postgres.schema_version(pg.pg) == 0:
                raise _missing(settings)
            yield pg
        finally:
            pg.close()
        return
    wait = _lock_timeout() if timeout is None else timeout
    with warehouse_lock(settings, exclusive=not read_only, timeout=wait):
        con = _open(settings.warehouse_path, read_only, wait)
        try:
            if not read_only:
                migrate(con)
            yield con
        finally:
            con.close()


def _missing(settings: Settings) -> WarehouseMissing:
    return WarehouseMissing(
        f"no warehouse at {settings.warehouse_label} yet: drop files into {settings.landing_dir} and run "
        "`agentmon run` (or `agentmon demo` first), or point AGENTMON_HOME / MONITORING_DB_URL at yours"
    )


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def fetch_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    """The result as a list of dicts, column name to value."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    if not table_exists(con, "raw", "schema_version"):
        return 0
    row = con.execute("select max(version) from raw.schema_version").fetchone()
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring an older warehouse forward to SCHEMA_VERSION, one migration per transaction."""
    current = schema_version(con)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        con.execute("begin transaction")
        try:
            for statement in MIGRATIONS[version - 1]:
                con.execute(statement)
            con.execute(
                "create table if not exists raw.schema_version (version integer primary key, applied_at timestamptz not null)"
            )
            con.execute("insert into raw.schema_version values (?, now())", [version])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    return SCHEMA_VERSION
