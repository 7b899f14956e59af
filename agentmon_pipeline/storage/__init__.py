"""The warehouse: DuckDB (a file, the default), PostgreSQL (MONITORING_DB_URL=postgresql://...) or
Apache Spark (spark://...).

Everything above this package reaches the warehouse through what it exports: `connect` (a
connection for one unit of work, migrated on first write), `transaction`, `table_exists`,
`fetch_rows`, and the schema (`schema.MIGRATIONS`). What differs between the engines lives
here: `warehouse` (the DuckDB file, its lock), `postgres` (connections, roles, COPY), `spark`
(the session, its SQL), `engines` (what each engine spells its own way)."""

from __future__ import annotations

from agentmon_pipeline.storage.schema import MIGRATIONS, SCHEMA_VERSION, SCHEMAS
from agentmon_pipeline.storage.warehouse import (
    connect,
    fetch_rows,
    migrate,
    schema_version,
    table_exists,
    transaction,
    warehouse_lock,
)

__all__ = [
    "MIGRATIONS", "SCHEMAS", "SCHEMA_VERSION", "connect", "fetch_rows", "migrate", "schema_version",
    "table_exists", "transaction", "warehouse_lock",
]  # fmt: skip
