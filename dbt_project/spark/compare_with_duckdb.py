"""Check the Spark build against DuckDB's: load the Spark warehouse's source tables into a new
DuckDB warehouse (the project's migrations), build it with the duckdb target, then compare every
table of intermediate and marts, row for row (timestamps as UTC, doubles to 9 decimals).

    python dbt_project/spark/compare_with_duckdb.py load     # then: dbt build --target duckdb
    python dbt_project/spark/compare_with_duckdb.py compare
"""

from __future__ import annotations

import datetime as dt
import decimal
import glob
import importlib.util
import os
import sys
from pathlib import Path

import duckdb

WAREHOUSE = os.environ.get("AGENTMON_SPARK_WAREHOUSE", "/tmp/spark-wh")
DUCK = os.environ.get("AGENTMON_WAREHOUSE_PATH", "/tmp/spark-compare/warehouse.duckdb")
SOURCES = [
    "raw.spans",
    "raw.metrics",
    "raw.events",
    "raw.model_prices",
    "evals.runs",
    "evals.results",
    "registry.agents",
    "registry.agent_versions",
    "registry.audit_log",
]


def parquet(table: str) -> str:
    schema, name = table.split(".")
    return f"{WAREHOUSE}/{schema}.db/{name}/*.parquet"


def load() -> None:
    spec = importlib.util.spec_from_file_location(
        "schema", Path(__file__).resolve().parents[2] / "agentmon_pipeline/storage/schema.py"
    )
    schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema)
    Path(DUCK).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(DUCK):
        os.remove(DUCK)
    con = duckdb.connect(DUCK)
    con.execute("set TimeZone = 'UTC'")
    for migration in schema.MIGRATIONS:
        for statement in migration:
            con.execute(statement)
    for table in SOURCES:
        if glob.glob(parquet(table)):
            con.execute(f"insert into {table} by name select * from read_parquet('{parquet(table)}')")
        print(table, con.execute(f"select count(*) from {table}").fetchone()[0], "rows")
    con.close()


def normal(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, (float, decimal.Decimal)):
        return round(float(value), 9)
    if isinstance(value, list):
        return tuple(normal(v) for v in value)
    return value


def compare() -> int:
    con = duckdb.connect(DUCK, read_only=True)
    con.execute("set TimeZone = 'UTC'")
    bad = 0
    for schema in ("intermediate", "marts"):
        for folder in sorted(glob.glob(f"{WAREHOUSE}/{schema}.db/*")):
            name = os.path.basename(folder)
            if name.endswith("__dbt_di"):
                continue
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name],
                ).fetchall()
            ]
            if not columns:
                print(f"{schema}.{name}: not in DuckDB")
                bad += 1
                continue
            cols = ", ".join(f'"{c}"' for c in columns)
            duck = con.execute(f"select {cols} from {schema}.{name}").fetchall()
            spark = con.execute(f"select {cols} from read_parquet('{folder}/*.parquet')").fetchall()
            duck_rows = sorted((tuple(normal(v) for v in r) for r in duck), key=repr)
            spark_rows = sorted((tuple(normal(v) for v in r) for r in spark), key=repr)
            same = duck_rows == spark_rows
            bad += not same
            print(
                f"{schema}.{name}: {len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB: {'same' if same else 'DIFFERENT'}"
            )
            if not same:
                for i, c in enumerate(columns):
                    if sorted(map(repr, (r[i] for r in duck_rows))) != sorted(
                        map(repr, (r[i] for r in spark_rows))
                    ):
                        print(
                            f"    column {c}: duckdb {sorted((r[i] for r in duck_rows), key=repr)[:4]} spark {sorted((r[i] for r in spark_rows), key=repr)[:4]}"
                        )
    return bad


if __name__ == "__main__":
    if sys.argv[1:] == ["load"]:
        load()
    else:
        sys.exit(1 if compare() else 0)
