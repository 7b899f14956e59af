"""What the callers of the warehouse do with DuckDB's own engine, whichever the warehouse is: on
DuckDB the warehouse's connection does it; on PostgreSQL an in-memory DuckDB does it with the
rows it needs. The one place that asks which engine a connection is."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb


def is_duckdb(con) -> bool:
    return isinstance(con, duckdb.DuckDBPyConnection)


def engine_of(engine) -> str:
    """duckdb, postgres or spark: of a warehouse connection, or of the Settings of one."""
    if hasattr(engine, "backend"):
        return engine.backend
    return "duckdb" if is_duckdb(engine) else engine.dialect


def begin(con) -> bool:
    """Start a transaction on `con`; False (and nothing done) when one is already open."""
    if is_duckdb(con):
        try:
            con.execute("begin transaction")
        except duckdb.TransactionException:  # DuckDB says so only by refusing
            return False
        return True
    if engine_of(con) == "spark":  # no transactions (see storage.spark)
        return False
    if con.pg.info.transaction_status != 0:  # psycopg's TransactionStatus.IDLE
        return False
    con.execute("begin")
    return True


def time_bucket(engine, interval: str, expr: str) -> str:
    """SQL for the start of the bucket of `interval` ('1 hour') that the timestamptz `expr` is in,
    buckets counted from Monday 2000-01-03 UTC (DuckDB's origin): DuckDB's time_bucket, PostgreSQL's
    date_bin. `engine` is a warehouse connection or the Settings of one."""
    origin = "'2000-01-03 00:00:00+00'::timestamptz"
    kind = engine_of(engine)
    if kind == "spark":  # no time_bucket: whole buckets of seconds since 1970 (2000-01-03 is one)
        count, unit = interval.split()
        seconds = int(count) * {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
        return f"timestamp_seconds(floor(unix_seconds({expr}) / {seconds}) * {seconds})"
    return f"{'time_bucket' if kind == 'duckdb' else 'date_bin'}(interval '{interval}', {expr}, {origin})"


def time_series(engine, first: str, last: str, interval: str) -> str:
    """A FROM item `series(bucket_start)`: the timestamps from `first` to `last` (SQL expressions,
    both included) `interval` apart. DuckDB and PostgreSQL: generate_series; Spark: sequence."""
    if engine_of(engine) == "spark":
        # sequence() refuses a `last` before `first`, where generate_series gives no rows
        steps = f"sequence({first}, greatest({first}, {last}), interval '{interval}')"
        return f"(select explode(filter({steps}, t -> t <= {last})) as bucket_start) as series"
    return f"generate_series({first}, {last}, interval '{interval}') as series(bucket_start)"


def local_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB set up as the warehouse's connections are (UTC, no progress bar)."""
    duck = duckdb.connect()
    duck.execute("set TimeZone = 'UTC'")
    duck.execute("set enable_progress_bar = false")
    return duck


@contextmanager
def in_duckdb(con, tables: Iterable[tuple[str, str]]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection that has the warehouse's `tables` (schema, name; those that exist):
    `con` itself on DuckDB; on PostgreSQL an in-memory copy of them, so that DuckDB's queries run
    on the same rows. With no tables it is where a file is parsed (`write_raw` then moves the rows)."""
    if is_duckdb(con):
        yield con
        return
    from agentmon_pipeline.storage.warehouse import table_exists

    with local_duckdb() as duck:
        for schema, table in sorted(set(tables)):
            if table_exists(con, schema, table):
                duck.execute(f"create schema if not exists {schema}")
                duck.register("incoming", con.sql(f"select * from {schema}.{table}").to_arrow_table())
                duck.execute(f"create table {schema}.{table} as select * from incoming")
                duck.unregister("incoming")
        yield duck


def copy_to_file(con, query: str, params: list, target: Path, options: str) -> None:
    """The rows of `query` written to `target` by DuckDB's COPY with `options` (a format): on
    DuckDB directly; from PostgreSQL (whose COPY writes on the server) the rows come here as Arrow."""
    path_sql = "'" + str(target).replace("'", "''") + "'"
    if is_duckdb(con):
        con.execute(f"copy ({query}) to {path_sql} {options}", params)
        return
    with local_duckdb() as duck:
        duck.register("exported", con.sql(query, params).to_arrow_table())
        duck.execute(f"copy exported to {path_sql} {options}")


@dataclass(frozen=True)
class Replace:
    """New rows for a raw table, replacing the rows that have the same key.

    `rows` and `keys` are queries on the parsing DuckDB: the rows in the table's column order, and
    their distinct keys named as the table's columns; `same` compares a row `t` of the table with
    a key `n` (SQL both engines read)."""

    target: str
    rows: str
    keys: str
    same: str


def write_raw(duck: duckdb.DuckDBPyConnection, con, replaces: list[Replace], appends: list[tuple[str, str]],
              finish: Callable[[object], None]) -> None:  # fmt: skip
    """Apply one file's write plan in one transaction of the warehouse: each Replace (delete the
    rows with its keys, insert its rows), each append (table, query on `duck`), then
    `finish(con)` (the ledger's row). On DuckDB the queries run in the warehouse itself (`duck`
    is `con`); on PostgreSQL their rows go by COPY."""
    if engine_of(con) == "spark":
        from agentmon_pipeline.storage.spark import write_raw as write_raw_spark

        write_raw_spark(duck, con, replaces, appends, finish)
        return
    if not is_duckdb(con):
        from agentmon_pipeline.storage.postgres import write_raw as write_raw_postgres

        write_raw_postgres(duck, con, replaces, appends, finish)
        return
    from agentmon_pipeline.storage.warehouse import transaction

    with transaction(con):
        for plan in replaces:
            con.execute(f"delete from {plan.target} t using ({plan.keys}) n where {plan.same}")
            con.execute(f"insert into {plan.target} {plan.rows}")
        for target, rows in appends:
            con.execute(f"insert into {target} {rows}")
        finish(con)
