"""Apache Spark as the warehouse: MONITORING_DB_URL=spark://local[2] (pyspark's own Spark in this
process) or spark://host:7077 (a standalone cluster's master).

The tables are plain parquet tables in a Hive catalog (an embedded Derby metastore under
`$AGENTMON_HOME/spark` unless AGENTMON_SPARK_METASTORE says elsewhere): raw telemetry, the marts
dbt-spark builds, and the state the pipeline keeps (the ledger, benchmarks, analytics, alerts,
the registry). `SparkConnection` is shaped like the DuckDB connection the rest of agentmon uses,
as `postgres.PgConnection` is: execute / sql with ? and $name parameters, fetchone / fetchall /
pl / df / to_arrow_table, register. Spark SQL reads most of the SQL the engines share; what it
lacks, this module supplies, and nothing else changes:

- parameters: ? and $name become Spark's named markers (:p0, :name);
- types: double precision is double, timestamptz timestamp, varchar string, json string;
- DDL: no primary keys; a sequence is a one-row table and nextval('s') its next value;
- update and delete: a parquet table cannot change rows in place, so the rows that stay (or
  change) are computed, checkpointed and written back with `insert overwrite`, and nothing is
  written when no row matches. Right for the small tables that change (alerts, registry, the
  ledger); a file's newer spans replace older ones with one such rewrite per file.
- transactions: Spark has none; begin, commit and rollback do nothing. A file's ledger row is
  written after its rows, so an interrupted load is loaded again on the next run.
- information_schema.tables and .columns: views of the catalog, made when a statement names them.

One SparkSession per process (the JVM takes seconds to start), which dbt-spark's session method
finds and shares. In local mode the Derby metastore admits one process at a time: agentmon's
processes take the warehouse lock, as on DuckDB, and one process works on one Spark warehouse.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import uuid
import weakref
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from agentmon_pipeline.config import Settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage.profiles import spark_environment

LOG4J = Path(__file__).with_name("spark-log4j2.properties")

# quoted text and identifiers, comments, the two parameter markers, the type names Spark spells
# otherwise, and nextval('sequence')
_LEXEME = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\?|\$([A-Za-z_]\w*)"""
    r"""|\b(varchar\s*\[\]|double\s+precision|timestamptz|varchar\b(?!\s*\()|json\b(?!\s*\()|(?<=::)text\b)"""
    r"""|\bnextval\s*\(\s*'([\w.]+)'\s*\)""",
    re.IGNORECASE,
)
_TYPES = {"double precision": "double", "timestamptz": "timestamp", "varchar": "string", "json": "string",
          "varchar[]": "array<string>", "text": "string"}  # fmt: skip


def _catalog_schema(*names: str):
    import pyarrow as pa

    return pa.schema([(n, pa.int32() if n == "ordinal_position" else pa.string()) for n in names])


def session(settings: Settings):
    """This process's SparkSession for `settings`' warehouse, started on first use."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(
            f"MONITORING_DB_URL={settings.warehouse_url}: Spark needs pyspark and dbt-spark: "
            "pip install -e '.[spark]' (and Java 17)"
        ) from None
    env = spark_environment(settings)
    metastore = Path(env["AGENTMON_SPARK_METASTORE"])
    running = SparkSession.getActiveSession()
    if running is not None:
        wanted = Path(env["AGENTMON_SPARK_WAREHOUSE"]).resolve()
        have = Path(running.conf.get("spark.sql.warehouse.dir").removeprefix("file:")).resolve()
        if have != wanted:
            raise UserError(
                f"this process already works on the Spark warehouse {have}; one process, one Spark "
                f"warehouse (asked for {wanted})"
            )
        return running
    # Spark's Python workers (few statements need them) run this interpreter, not the system's
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    metastore.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(env["AGENTMON_SPARK_MASTER"]).appName("agentmon")
        .config("spark.sql.warehouse.dir", env["AGENTMON_SPARK_WAREHOUSE"])
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore}/metastore_db;create=true")
        .config("spark.driver.memory", env["AGENTMON_SPARK_DRIVER_MEMORY"])
        .config("spark.driver.extraJavaOptions",
                f"-Dderby.system.home={metastore} -Dlog4j2.configurationFile={LOG4J} "
                + os.environ.get("AGENTMON_SPARK_JAVA_OPTIONS", ""))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.ansi.enabled", "false")  # as dbt-spark sets it for the models
        .config("spark.log.structuredLogging.enabled", "false")
        .enableHiveSupport()
    )  # fmt: skip
    for setting in os.environ.get("AGENTMON_SPARK_CONF", "").split():  # key=value ..., Spark's own settings
        key, _, value = setting.partition("=")
        builder = builder.config(key, value)
    from pyspark.errors import PySparkRuntimeError

    try:
        spark = builder.getOrCreate()
    except PySparkRuntimeError as exc:  # no Java (JAVA_GATEWAY_EXITED)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot start Spark for {settings.warehouse_label}: {first}") from None
    spark.sparkContext.setLogLevel("ERROR")
    # pyspark logs every failed statement with its stack trace; agentmon reports it in one line
    from pyspark.logger import PySparkLogger

    PySparkLogger.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    _check_metastore(spark, settings, metastore)
    return spark


def _check_metastore(spark, settings: Settings, metastore: Path) -> None:
    """The catalog opens, or one line says why: the embedded Derby metastore admits one process
    (JVM) at a time, and another one has it."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException

    try:
        spark.sql("show databases").collect()
    except (AnalysisException, Py4JJavaError) as exc:
        if "Derby" not in str(exc) and "metastore" not in str(exc).lower():
            raise
        spark.stop()
        raise UserError(
            f"the Spark warehouse {settings.warehouse_label} is in use by another process: its catalog "
            f"({metastore}, an embedded Derby metastore) admits one at a time; try again when it has "
            "finished, or give Spark a Hive metastore service (docs/spark.md)"
        ) from None


def _nextval_marker(sequence: str) -> str:
    """The parameter that stands for nextval('sequence') in a statement Spark runs."""
    return "nextval_" + sequence.replace(".", "_")


@lru_cache(maxsize=2048)
def _spark_sql(sql: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """`sql` with ? as :p0, :p1 ... and $name as :name, Spark's type names, and each
    nextval('s') as :nextval_s; the positional markers and the sequences, in order."""
    positional: list[str] = []
    sequences: list[str] = []

    def swap(match: re.Match) -> str:
        text = match.group(0)
        if text == "?":
            positional.append(f"p{len(positional)}")
            return ":" + positional[-1]
        if match.group(1):
            return ":" + match.group(1)
        if match.group(2):
            return _TYPES[re.sub(r"\s+", " ", match.group(2).lower()).replace(" []", "[]")]
        if match.group(3):
            sequences.append(match.group(3))
            return ":" + _nextval_marker(match.group(3))
        if text[0] == '"':  # an identifier: Spark quotes them with backticks
            return "`" + text[1:-1].replace('""', '"').replace("`", "``") + "`"
        return text

    return _LEXEME.sub(swap, sql), tuple(positional), tuple(sequences)


def _top_level(text: str, pattern: str) -> list[str]:
    """`text` split where `pattern` matches outside parentheses and quotes."""
    parts, depth, start = [], 0, 0
    token = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[()]|" + pattern, re.IGNORECASE)
    for match in token.finditer(text):
        piece = match.group(0)
        if piece == "(":
            depth += 1
        elif piece == ")":
            depth -= 1
        elif piece[0] not in "'\"" and depth == 0:
            parts.append(text[start : match.start()])
            start = match.end()
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _ddl(sql: str) -> str:
    """A CREATE TABLE of the migrations as Spark's: no primary key, stored as parquet."""
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r",\s*primary\s+key\s*\([^)]*\)", "", sql, flags=re.IGNORECASE)
    sql = re.sub(r"\s+primary\s+key\b", "", sql, flags=re.IGNORECASE)
    return sql.rstrip().rstrip(";") + " using parquet"


# each sequence's last value, per session (one per process), read from its table on first use
_LAST_VALUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SEQUENCE_LOCK = threading.Lock()


class SparkCursor:
    """A result, with the fetch methods of a DuckDB result (rows held as Arrow)."""

    def __init__(self, table=None, rowcount: int = -1):
        self._table = table
        self._rows: list[tuple] | None = None
        self._next = 0
        self.rowcount = rowcount

    @property
    def description(self):
        if self._table is None:
            return None
        return [(f.name, str(f.type), None, None, None, None, None) for f in self._table.schema]

    def _all(self) -> list[tuple]:
        if self._rows is None:
            if self._table is None:
                self._rows = [(self.rowcount,)] if self.rowcount >= 0 else []
            else:
                columns = [c.to_pylist() for c in self._table.columns]
                self._rows = list(zip(*columns, strict=True)) if columns else []
        return self._rows

    def fetchone(self):
        rows = self._all()
        if self._next >= len(rows):
            return None
        self._next += 1
        return rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rows = self._all()[self._next :]
        self._next = len(self._all())
        return rows

    def to_arrow_table(self):
        return self._table

    fetch_arrow_table = to_arrow_table

    def pl(self):
        import polars as pl

        return pl.from_arrow(self._table)

    def df(self):
        return self._table.to_pandas()


class SparkConnection:
    """The Spark warehouse, shaped like the DuckDB connection the rest of agentmon uses."""

    dialect = "spark"

    def __init__(self, spark):
        self.spark = spark
        self._views: set[str] = set()

    # statements ----------------------------------------------------------------------------------

    def execute(self, sql: str, params: list | tuple | dict | None = None) -> SparkCursor:
        text, positional, sequences = _spark_sql(sql)
        args = self._args(text, positional, params)
        for name in sequences:
            args[_nextval_marker(name)] = self._nextval(name)
        if len(sequences) == 1 and text.split() == [
            "select",
            ":" + _nextval_marker(sequences[0]),
        ]:  # no job for a constant
            import pyarrow as pa

            return SparkCursor(pa.table({"nextval": [args[_nextval_marker(sequences[0])]]}))
        head = text.lstrip().lower()
        words = head.split(None, 3)
        if not words or words[0] in ("begin", "commit", "rollback"):
            return SparkCursor()
        if words[:2] == ["create", "sequence"]:
            name = re.search(r"sequence\s+(?:if\s+not\s+exists\s+)?([\w.]+)", text, re.IGNORECASE).group(1)
            _LAST_VALUES.get(self.spark, {}).pop(name, None)
            self.spark.sql(f"create table if not exists {name} (value bigint) using parquet")
            return SparkCursor()
        if words[:2] == ["create", "table"] and "(" in text.split(" as ", 1)[0] and " as select" not in head:
            text = _ddl(text)
        if words[:2] == ["alter", "table"]:
            return self._add_column(text)
        if words[0] == "update":
            return self._update(text, args)
        if words[0] == "delete":
            return self._delete(text, args)
        if "information_schema." in head:
            text = self._catalog_views(text)
        frame = self.spark.sql(text, args=args or None)
        if words[0] in ("select", "with", "values", "show", "describe") or head.startswith("("):
            return SparkCursor(frame.toArrow())
        return SparkCursor()

    def sql(self, sql: str, params: list | dict | None = None) -> SparkCursor:
        return self.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable) -> None:
        for row in rows:
            self.execute(sql, row)

    @staticmethod
    def _args(text: str, positional: tuple[str, ...], params) -> dict:
        if not params:
            return {}
        if isinstance(params, dict):
            values = {k: v for k, v in params.items() if f":{k}" in text}
        else:
            values = dict(zip(positional, params, strict=True))
        return {k: v.item() if hasattr(v, "item") and not isinstance(v, (list, tuple)) else v
                for k, v in values.items()}  # fmt: skip

    def _nextval(self, name: str) -> int:
        """The sequence's next value, written before it is used. Its last value is read once per
        process (`_LAST_VALUES`): one process works on a Spark warehouse (the module's docstring)."""
        with _SEQUENCE_LOCK:
            last = _LAST_VALUES.setdefault(self.spark, {})
            if name not in last:
                last[name] = int(self.spark.sql(f"select max(value) from {name}").collect()[0][0] or 0)
            value = last[name] + 1
            self.spark.sql(f"insert overwrite table {name} values ({value})")
            last[name] = value
            return value

    def _add_column(self, text: str) -> SparkCursor:
        match = re.match(r"\s*alter\s+table\s+([\w.]+)\s+add\s+column\s+(?:if\s+not\s+exists\s+)?(\w+)\s+(.*)$",
                         text, re.IGNORECASE | re.DOTALL)  # fmt: skip
        if match is None:
            self.spark.sql(text)
            return SparkCursor()
        table, column, definition = match.groups()
        if column.lower() not in (c.lower() for c in self.spark.table(table).columns):
            self.spark.sql(f"alter table {table} add columns ({column} {definition.strip()})")
        return SparkCursor()

    # update and delete: the table rewritten -------------------------------------------------------

    def _rewrite(self, table: str, count_sql: str, keep_sql: str, args: dict) -> SparkCursor:
        matched = int(self.spark.sql(count_sql, args=args or None).collect()[0][0])
        if matched:
            kept = self.spark.sql(keep_sql, args=args or None).localCheckpoint(eager=True)
            kept.write.insertInto(table, overwrite=True)
        return SparkCursor(rowcount=matched)

    def _update(self, text: str, args: dict) -> SparkCursor:
        match = re.match(r"\s*update\s+([\w.]+)\s+set\s+(.*)$", text, re.IGNORECASE | re.DOTALL)
        table, rest = match.groups()
        pieces = _top_level(rest, r"\bwhere\b")
        assignments, condition = pieces[0], (pieces[1] if len(pieces) > 1 else "true")
        changed = {}
        for assignment in _top_level(assignments, ","):
            column, expr = assignment.split("=", 1)
            changed[column.strip().lower()] = expr.strip()
        hit = f"coalesce(({condition}), false)"
        select = ", ".join(
            f"case when {hit} then ({changed[c.lower()]}) else {c} end as {c}" if c.lower() in changed else c
            for c in self.spark.table(table).columns
        )
        return self._rewrite(
            table, f"select count(*) from {table} where {hit}", f"select {select} from {table}", args
        )

    def _delete(self, text: str, args: dict) -> SparkCursor:
        match = re.match(r"\s*delete\s+from\s+([\w.]+)(?:\s+(?!using\b|where\b)(\w+))?\s*(.*)$", text,
                         re.IGNORECASE | re.DOTALL)  # fmt: skip
        table, alias, rest = match.groups()
        alias = alias or table.split(".")[-1]
        pieces = _top_level(rest, r"\bwhere\b")
        source, condition = pieces[0], (pieces[1] if len(pieces) > 1 else "true")
        if source.lower().startswith("using"):
            exists = f"exists (select 1 from {source[len('using') :].strip()} where {condition})"
            hit, keep = exists, f"not {exists}"
        else:
            hit = f"coalesce(({condition}), false)"
            keep = f"not {hit}"
        return self._rewrite(table, f"select count(*) from {table} {alias} where {hit}",
                             f"select {alias}.* from {table} {alias} where {keep}", args)  # fmt: skip

    # the catalog -----------------------------------------------------------------------------------

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))

    def _catalog_views(self, text: str) -> str:
        """information_schema.tables (and .columns) as views of the catalog, made now."""
        import pyarrow as pa

        tables = [(db.name, t.name) for db in self.spark.catalog.listDatabases()
                  for t in self.spark.catalog.listTables(db.name) if not t.isTemporary]  # fmt: skip
        names = {"table_schema": [s for s, _ in tables], "table_name": [t for _, t in tables]}
        self._view(
            "information_schema_tables",
            self.spark.createDataFrame(pa.table(names, _catalog_schema("table_schema", "table_name"))),
        )
        text = re.sub(
            r"\binformation_schema\.tables\b", "information_schema_tables", text, flags=re.IGNORECASE
        )
        if re.search(r"\binformation_schema\.columns\b", text, re.IGNORECASE):
            columns = [(schema, name, c.name, c.dataType, n + 1) for schema, name in tables
                       for n, c in enumerate(self.spark.catalog.listColumns(f"{schema}.{name}"))]  # fmt: skip
            shape = _catalog_schema(
                "table_schema", "table_name", "column_name", "data_type", "ordinal_position"
            )
            values = {f.name: [row[i] for row in columns] for i, f in enumerate(shape)}
            self._view("information_schema_columns", self.spark.createDataFrame(pa.table(values, shape)))
            text = re.sub(
                r"\binformation_schema\.columns\b", "information_schema_columns", text, flags=re.IGNORECASE
            )
        return text

    # frames ------------------------------------------------------------------------------------------

    def register(self, name: str, data) -> None:
        """A temporary view `name` of a pandas, polars or Arrow frame."""
        import polars as pl
        import pyarrow as pa

        if isinstance(data, pl.DataFrame):
            arrow = data.to_arrow()
        elif isinstance(data, pa.Table):
            arrow = data
        else:  # pandas
            arrow = pa.Table.from_pandas(data, preserve_index=False)
        self._view(name, self.spark.createDataFrame(_plain_arrow(arrow)))

    def _view(self, name: str, frame) -> None:
        frame.createOrReplaceTempView(name)
        self._views.add(name)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._views.discard(name)

    def close(self) -> None:
        for name in list(self._views):
            self.unregister(name)


def _plain_arrow(table):
    """Arrow types Spark reads: large strings and lists as plain ones."""
    import pyarrow as pa

    def plain(kind):
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            return pa.string()
        if pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
            return pa.list_(plain(kind.value_type))
        if pa.types.is_list(kind):
            return pa.list_(plain(kind.value_type))
        return kind

    schema = pa.schema([pa.field(f.name, plain(f.type)) for f in table.schema])
    return table.cast(schema) if schema != table.schema else table


def write_raw(duck, con: SparkConnection, replaces, appends, finish) -> None:
    """engines.write_raw on Spark: each plan's keys as a view, the table rewritten without the
    rows they replace (only when there are such rows), the new rows appended, then `finish(con)`
    (the ledger's row, last: Spark has no transaction to make the file's rows appear at once)."""
    for n, plan in enumerate(replaces):
        keys = f"new_keys_{n}"
        con.register(keys, duck.sql(plan.keys).to_arrow_table())
        con.execute(f"delete from {plan.target} t using {keys} n where {plan.same}")
        con.unregister(keys)
        _append(con.spark, duck, plan.rows, plan.target)
    for target, rows in appends:
        _append(con.spark, duck, rows, target)
    finish(con)


def _append(spark, duck, rows: str, target: str) -> None:
    """The rows of the DuckDB query `rows` appended to the Spark table `target`: written by DuckDB
    as a parquet file beside the tables, read by Spark (no row passes through Python, and the
    driver holds no copy); where the tables are not on this machine's file system, as Arrow."""
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    if re.match(r"^[a-z][a-z0-9+.-]*://", warehouse) and not warehouse.startswith("file:"):
        arrow = duck.execute(f"select * from ({rows})").to_arrow_table()
        if arrow.num_rows:
            spark.createDataFrame(_plain_arrow(arrow)).write.insertInto(target)
        return
    scratch = Path(re.sub(r"^file:(//)?", "", warehouse)) / "_agentmon_incoming"
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"{target}-{uuid.uuid4().hex[:12]}.parquet"
    # JSON as text (Spark has no JSON type); timestamps with time zone are instants in parquet too
    columns = duck.execute(f"describe select * from ({rows})").fetchall()
    select = ", ".join(f'"{name}"::varchar as "{name}"' if kind == "JSON" else f'"{name}"'
                       for name, kind, *_ in columns)  # fmt: skip
    try:
        written = duck.execute(
            f"copy (select {select} from ({rows})) to '{path}' (format parquet)"
        ).fetchone()[0]
        if written:
            spark.read.parquet(str(path)).write.insertInto(target)
    finally:
        path.unlink(missing_ok=True)
