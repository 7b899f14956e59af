"""PostgreSQL as the shared warehouse: connection settings and access control.

`agentmon db init --roles` makes the schemas of SPEC §4 and two group roles, the way databases
control access:
- `agentmon_writer`: the pipeline. Uses and creates in every agentmon schema, and owns what it
  creates.
- `agentmon_reader`: dashboards and analysts. Reads the marts, nothing else: no raw telemetry
  (inputs, outputs, user ids), no writes. Tables the writer creates in `marts` later are readable
  too (default privileges).
Both are NOLOGIN: grant them to login users (`grant agentmon_reader to evidence_user`).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage.schema import MIGRATIONS, SCHEMA_VERSION, SCHEMAS

READ_SCHEMAS = ("marts",)


def connection_kwargs(url: str, ssl: bool = False) -> dict:
    """psycopg keyword arguments for `url`; `ssl` (MONITORING_DB_SSL) requires TLS."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise UserError(f"MONITORING_DB_URL={url!r}: expected postgresql://user:password@host:port/database")
    kwargs: dict = {"conninfo": url, "connect_timeout": 10}
    if ssl:
        kwargs["sslmode"] = "require"
    return kwargs


def connect(url: str, ssl: bool = False):
    import psycopg
    from psycopg.types.numeric import FloatLoader
    from psycopg.types.string import TextLoader

    try:
        con = psycopg.connect(**connection_kwargs(url, ssl), autocommit=True, options="-c TimeZone=UTC")
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot connect to the PostgreSQL warehouse: {reason}") from None
    # the values DuckDB gives: numbers as floats (sum() of integers is numeric here), JSON as text
    con.adapters.register_loader("numeric", FloatLoader)
    for kind in ("json", "jsonb"):
        con.adapters.register_loader(kind, TextLoader)
    return con


@dataclass(frozen=True)
class Roles:
    writer: str = "agentmon_writer"
    reader: str = "agentmon_reader"


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise UserError(f"{name!r}: a role name is letters, digits and underscores")
    return '"' + name + '"'


def init_roles(con, roles: Roles = Roles()) -> list[str]:
    """Create the schemas and the two roles, and grant; safe to run again. Returns what was done."""
    writer, reader = _ident(roles.writer), _ident(roles.reader)
    done = []
    with con.cursor() as cur:
        for role in (roles.writer, roles.reader):
            cur.execute("select 1 from pg_roles where rolname = %s", [role])
            if cur.fetchone() is None:
                cur.execute(f"create role {_ident(role)} nologin")
                done.append(f"created role {role}")
        for schema in SCHEMAS:
            cur.execute(f"create schema if not exists {schema}")
            cur.execute(f"grant usage, create on schema {schema} to {writer}")
            cur.execute(f"grant all on all tables in schema {schema} to {writer}")
            cur.execute(f"grant all on all sequences in schema {schema} to {writer}")
            cur.execute(f"revoke all on schema {schema} from public")
        for schema in READ_SCHEMAS:
            cur.execute(f"grant usage on schema {schema} to {reader}")
            cur.execute(f"grant select on all tables in schema {schema} to {reader}")
            for owner in (writer, "current_user"):
                target = owner if owner != "current_user" else _ident(_current_user(cur))
                cur.execute(f"alter default privileges for role {target} in schema {schema} "
                            f"grant select on tables to {reader}")  # fmt: skip
        done.append(f"{roles.writer}: use and create in {', '.join(SCHEMAS)}")
        done.append(f"{roles.reader}: select on {', '.join(READ_SCHEMAS)} (now and later tables)")
    return done


def _current_user(cur) -> str:
    cur.execute("select current_user")
    return cur.fetchone()[0]


# schema ------------------------------------------------------------------------------------------
# The same migrations as DuckDB's (schema.MIGRATIONS, written in types both engines read): one list
# of tables, one schema version, for both warehouses.


def schema_version(con) -> int:
    row = con.execute("select to_regclass('raw.schema_version')").fetchone()
    if row[0] is None:
        return 0
    return con.execute("select coalesce(max(version), 0) from raw.schema_version").fetchone()[0]


def migrate(con) -> int:
    """Bring a PostgreSQL warehouse forward to SCHEMA_VERSION, one migration per transaction
    (PostgreSQL's DDL is transactional: a failed migration leaves nothing half done)."""
    for version in range(schema_version(con) + 1, SCHEMA_VERSION + 1):
        with con.transaction():
            for statement in MIGRATIONS[version - 1]:
                con.execute(statement)
            con.execute("create table if not exists raw.schema_version "
                        "(version integer primary key, applied_at timestamptz not null)")  # fmt: skip
            con.execute("insert into raw.schema_version values (%s, now())", [version])
    return SCHEMA_VERSION


# bulk loading ------------------------------------------------------------------------------------
# DuckDB parses; PostgreSQL receives whole tables through COPY. DuckDB writes the CSV (in C, not a
# Python loop per row) and psycopg streams its bytes into COPY ... FROM STDIN.

PG_TYPES = {
    "VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision",
    "BOOLEAN": "boolean", "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIMESTAMP": "timestamp",
    "DATE": "date", "JSON": "json", "HUGEINT": "numeric", "SMALLINT": "smallint", "FLOAT": "real",
    "UBIGINT": "numeric", "UINTEGER": "bigint", "TINYINT": "smallint", "UUID": "uuid",
    "TIMESTAMP_NS": "timestamp", "NULL": "text",
}  # fmt: skip
NULL = r"\N"


def pg_type(duckdb_type: str) -> str:
    duckdb_type = duckdb_type.strip('"')  # a column of nulls only is "NULL"
    if duckdb_type in PG_TYPES:
        return PG_TYPES[duckdb_type]
    if duckdb_type.endswith("[]"):
        return pg_type(duckdb_type[:-2]) + "[]"
    if duckdb_type.startswith("DECIMAL"):
        return "numeric"
    raise UserError(f"no PostgreSQL type for DuckDB's {duckdb_type}")


def create_table_like(duck, pg, source: str, target: str, temporary: bool = False) -> list[str]:
    """`create table if not exists target` (or a temporary one) with the columns of the DuckDB
    relation `source` (a table or a query); returns the column names."""
    columns = duck.execute(f"describe {source}").fetchall()
    ddl = ", ".join(f'"{name}" {pg_type(kind)}' for name, kind, *_ in columns)
    pg.execute(f"create {'temp ' if temporary else ''}table if not exists {target} ({ddl})")
    return [name for name, *_ in columns]


def copy_into(duck, pg, source: str, target: str, scratch_dir=None) -> int:
    """Append the rows of the DuckDB relation `source` to the PostgreSQL table `target` with one
    COPY; returns the rows copied. Lists are written as PostgreSQL array literals."""
    columns = duck.execute(f"describe {source}").fetchall()
    select = ", ".join(
        f"""'{{' || array_to_string(list_transform("{name}", lambda x: '"' || replace(replace(x, '\\', '\\\\'), '"', '\\"') || '"'), ',') || '}}' as "{name}\""""
        if kind.endswith("[]") else f'"{name}"'
        for name, kind, *_ in columns
    )  # fmt: skip
    fd, path = tempfile.mkstemp(suffix=".csv", dir=scratch_dir)
    os.close(fd)
    try:
        relation = source if re.fullmatch(r'[\w."]+', source) else f"({source})"
        duck.execute(
            f"copy (select {select} from {relation}) to '{path}' (format csv, header false, nullstr '{NULL}')"
        )
        names = ", ".join(f'"{name}"' for name, *_ in columns)
        with pg.cursor() as cur:
            with (
                cur.copy(f"copy {target} ({names}) from stdin (format csv, null '{NULL}')") as copy,
                open(path, "rb") as f,
            ):
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            rows = cur.rowcount
    finally:
        os.unlink(path)
    return rows


# the warehouse interface ---------------------------------------------------------------------------
# Evaluations, analytics, alerts, the registry and the CLI talk to the warehouse through the part of
# DuckDB's connection API they use: execute / executemany / sql with ? or $name parameters,
# fetchone / fetchall / df / pl / to_arrow_table, register / unregister of a dataframe. On DuckDB
# that is the DuckDB connection itself; on PostgreSQL it is PgConnection. The SQL is written once,
# in what both engines read (percentile_cont ... within group, double precision, interval '1 day');
# where they differ, a function of `engines` writes each one's (time_bucket). PgConnection changes
# only how parameters are marked: DuckDB's ? and $name are psycopg's %s and %(name)s.

POLARS_TYPES = {16: "Boolean", 20: "Int64", 21: "Int64", 23: "Int64", 700: "Float64", 701: "Float64",
                1700: "Float64", 25: "String", 1043: "String", 114: "String", 3802: "String",
                1184: "Datetime", 1114: "Datetime", 1082: "Date"}  # fmt: skip
# what is not a parameter (quoted text and identifiers, comments), the two markers, and %
_LEXEME = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\?|\$([A-Za-z_]\w*)|%""")


@lru_cache(maxsize=2048)
def placeholders(sql: str) -> str:
    """`sql` with DuckDB's parameter markers (? and $name) as psycopg's (%s, %(name)s), and every
    other % doubled, quoted ones too (psycopg reads any % as the start of a marker). A ? or $ in
    quoted text or a comment is text."""

    def swap(match: re.Match) -> str:
        text = match.group(0)
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return text.replace("%", "%%")

    return _LEXEME.sub(swap, sql)


class PgCursor:
    """A result, with the fetch methods of a DuckDB result."""

    def __init__(self, cur):
        self._cur = cur

    @property
    def description(self):
        return self._cur.description

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self):
        if self._cur.description is None:  # insert, update, delete: DuckDB answers with the count
            return (self._cur.rowcount,)
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall()

    def pl(self):
        import polars as pl

        names = [d.name for d in self._cur.description]
        schema = {}
        for d in self._cur.description:
            kind = POLARS_TYPES.get(d.type_code)
            schema[d.name] = (
                pl.List(pl.String) if d.type_code in (1009, 1015) else
                pl.Datetime("us", "UTC") if d.type_code == 1184 else
                pl.Datetime("us") if kind == "Datetime" else getattr(pl, kind) if kind else None
            )  # fmt: skip
        rows = self._cur.fetchall()
        if all(v is not None for v in schema.values()):
            return pl.DataFrame(rows, schema=schema, orient="row")
        frame = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        return frame.cast({k: v for k, v in schema.items() if v is not None}) if rows else frame

    def to_arrow_table(self):
        return self.pl().to_arrow()

    fetch_arrow_table = to_arrow_table

    def df(self):
        return self.pl().to_pandas()


class PgConnection:
    """The PostgreSQL warehouse, shaped like the DuckDB connection the rest of agentmon uses."""

    dialect = "postgres"

    def __init__(self, pg):
        self.pg = pg

    def execute(self, sql: str, params: list | tuple | dict | None = None) -> PgCursor:
        cur = self.pg.cursor()
        if not params:  # no parameters: psycopg sends the text as it is, % included
            cur.execute(sql)
        else:
            cur.execute(placeholders(sql), params)
        return PgCursor(cur)

    def executemany(self, sql: str, rows) -> None:
        with self.pg.cursor() as cur:
            cur.executemany(placeholders(sql), rows)

    def sql(self, sql: str, params: list | dict | None = None) -> PgCursor:
        return self.execute(sql, params)

    def register(self, name: str, data) -> None:
        """A temporary table `name` holding a pandas, polars or Arrow frame (one COPY)."""
        import polars as pl

        from agentmon_pipeline.storage.engines import local_duckdb

        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        self.unregister(name)
        with local_duckdb() as duck:
            duck.register("frame", arrow)
            create_table_like(duck, self.pg, "frame", f'"{name}"', temporary=True)
            copy_into(duck, self.pg, "frame", f'"{name}"')

    def unregister(self, name: str) -> None:
        self.pg.execute(f'drop table if exists pg_temp."{name}"')

    def close(self) -> None:
        self.pg.close()


def write_raw(duck, con, replaces, appends, finish) -> None:
    """engines.write_raw on PostgreSQL: each plan's keys go by COPY into a temporary table, the rows
    they replace are deleted, the new rows go by COPY straight into the raw table (one write, not
    two); all in one PostgreSQL transaction."""
    pg = con.pg
    pg.execute("begin")
    try:
        for n, plan in enumerate(replaces):
            keys = f"new_keys_{n}"
            columns = [name for name, *_ in duck.execute(f"describe {plan.keys}").fetchall()]
            pg.execute(f"create temp table {keys} on commit drop as select {', '.join(columns)} "
                       f"from {plan.target} limit 0")  # fmt: skip
            copy_into(duck, pg, plan.keys, keys)
            pg.execute(f"delete from {plan.target} t using {keys} n where {plan.same}")
            copy_into(duck, pg, plan.rows, plan.target)
        for target, rows in appends:
            copy_into(duck, pg, rows, target)
        finish(con)
        pg.execute("commit")
    except BaseException:
        pg.execute("rollback")
        raise
