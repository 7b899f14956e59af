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
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agentmon_pipeline.config import Settings
from agentmon_pipeline.errors import WarehouseBusy, WarehouseMissing
from agentmon_pipeline.storage.engines import begin, engine_of
from agentmon_pipeline.storage.schema import MIGRATIONS, SCHEMA_VERSION

_held: dict[str, int] = {}
_current_sessions: weakref.WeakSet = weakref.WeakSet()  # Spark sessions whose warehouse is at SCHEMA_VERSION


def _lock_timeout() -> float:
    return float(os.environ.get("AGENTMON_LOCK_TIMEOUT", "600"))


@contextmanager
def warehouse_lock(
    settings: Settings, exclusive: bool = True, timeout: float | None = None
) -> Iterator[None]:
    """Hold the cross-process warehouse lock; re-entrant within one process. PostgreSQL needs none:
    its transactions let any number of processes read and write at once. Spark has no
    transactions, and in local mode its metastore admits one process: it takes the lock too."""
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
        from agentmon_pipeline.storage import postgres

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
    if settings.backend == "spark":
        with warehouse_lock(settings, exclusive=True, timeout=wait):
            from agentmon_pipeline.storage import spark

            started = spark.session(settings)
            con = spark.SparkConnection(started)
            try:
                # each statement costs Spark a job: a session that has seen the schema current
                # does not ask again (versions only go up)
                if started not in _current_sessions:
                    version = schema_version(con) if read_only else migrate(con)
                    if version == 0:
                        raise _missing(settings)
                    if version >= SCHEMA_VERSION:
                        _current_sessions.add(started)
                yield con
            finally:
                con.close()
        return
    with warehouse_lock(settings, exclusive=not read_only, timeout=wait):
        con = _open(settings.warehouse_path, read_only, wait)
        try:
            if not read_only:
                migrate(con)
            yield con
        finally:
            con.close()


@contextmanager
def transaction(con) -> Iterator[None]:
    """One transaction on the warehouse connection `con`: committed when the block ends, rolled
    back (and the error raised again) when it raises, whatever it raises. Inside another
    transaction it joins that one: the outer block commits or rolls back."""
    if not begin(con):
        yield
        return
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _missing(settings: Settings) -> WarehouseMissing:
    return WarehouseMissing(
        f"no warehouse at {settings.warehouse_label} yet: drop files into {settings.landing_dir} and run "
        "`agentmon run` (or `agentmon demo` first), or point AGENTMON_HOME / MONITORING_DB_URL at yours"
    )


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    if hasattr(con, "table_exists"):  # Spark: its catalog
        return con.table_exists(schema, table)
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


SCHEMA_VERSION_TABLE = "create table if not exists raw.schema_version (version integer primary key, applied_at timestamptz not null)"


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring an older warehouse forward to SCHEMA_VERSION, one migration per transaction."""
    current = schema_version(con)
    versions = list(range(current + 1, SCHEMA_VERSION + 1))
    if (
        versions and engine_of(con) == "spark"
    ):  # no transactions: the statements (each may run again), then the versions
        for version in versions:
            for statement in MIGRATIONS[version - 1]:
                con.execute(statement)
        con.execute(SCHEMA_VERSION_TABLE)
        con.execute(
            "insert into raw.schema_version values " + ", ".join(["(?, now())"] * len(versions)), versions
        )
        return SCHEMA_VERSION
    for version in versions:
        with transaction(con):
            for statement in MIGRATIONS[version - 1]:
                con.execute(statement)
            con.execute(SCHEMA_VERSION_TABLE)
            con.execute("insert into raw.schema_version values (?, now())", [version])
    return SCHEMA_VERSION
