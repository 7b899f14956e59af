"""`agentmon export`: a table of the warehouse (marts, benchmark results, analytics, alerts) as CSV,
JSON or Parquet, written by DuckDB's COPY (no rows pass through Python; from PostgreSQL they come
as Arrow and DuckDB writes them)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from agentmon_pipeline.config import Settings
from agentmon_pipeline.config import settings as current_settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage import connect
from agentmon_pipeline.storage.engines import copy_to_file

EXPORTABLE_SCHEMAS = ("marts", "evals", "analytics", "alerts")
# the column --since filters on, first present wins
TIME_COLUMNS = ("started_at", "bucket_start", "time", "first_seen_at", "target_date", "finished_at",
                "effective_from", "created_at", "computed_at", "logged_at", "detected_at", "month")  # fmt: skip
FORMATS = {
    "csv": "(format csv, header true)",
    "json": "(format json, array true)",
    "parquet": "(format parquet)",
}


def _tables(con) -> list[tuple[str, str]]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables where table_schema in "
        f"({', '.join(repr(s) for s in EXPORTABLE_SCHEMAS)}) order by 1, 2"
    ).fetchall()
    return [(schema, name) for schema, name in rows]


def resolve_table(con, ref: str) -> tuple[str, str]:
    tables = _tables(con)
    schema, _, name = ref.rpartition(".")
    matches = [(s, n) for s, n in tables if n == name and (not schema or s == schema)]
    if not matches:
        known = ", ".join(f"{s}.{n}" for s, n in tables) or "none yet: run `agentmon run` first"
        raise UserError(f"no table {ref!r} to export; exportable: {known}")
    return matches[0]  # marts first when a name is in several schemas


def export_table(
    ref: str, fmt: str, out: Path | None = None, since: date | None = None, s: Settings | None = None
) -> tuple[Path, int]:
    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    s = s or current_settings()
    with connect(s, read_only=True) as con:
        schema, name = resolve_table(con, ref)
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, name]).fetchall()]  # fmt: skip
        where, params = "", []
        if since is not None:
            column = next((c for c in TIME_COLUMNS if c in columns), None)
            if column is None:
                raise UserError(
                    f"{schema}.{name} has no time column for --since (looked for {', '.join(TIME_COLUMNS)})"
                )
            where, params = f" where {column} >= ?", [since]
        target = (out or Path(f"{name}.{fmt}")).expanduser().resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        query = f'select * from {schema}."{name}"{where}'
        count = con.execute(f"select count(*) from ({query}) as exported", params).fetchone()[0]
        copy_to_file(con, query, params, target, FORMATS[fmt])
    return target, int(count)
