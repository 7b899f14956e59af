"""`DatabaseManager`: read access to the warehouse for analytics, scripts and notebooks."""

from __future__ import annotations

from typing import Any

import polars as pl

from agentmon_pipeline.config import Settings, settings, warehouse_path_from_url
from agentmon_pipeline.storage import connect, table_exists


class DatabaseManager:
    """The warehouse of `MONITORING_DB_URL` (or the URL given). Every query opens a read-only
    connection under the warehouse lock and closes it, so it never blocks a pipeline run for long."""

    def __init__(self, url: str | None = None):
        base = settings()
        if url is not None:
            base = Settings(
                **{**base.__dict__, "warehouse_url": url, "warehouse_path": warehouse_path_from_url(url)}
            )
        self.settings = base

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        with connect(self.settings, read_only=True) as con:
            return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())

    def table_exists(self, schema: str, table: str) -> bool:
        with connect(self.settings, read_only=True) as con:
            return table_exists(con, schema, table)

    def scalar(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        frame = self.query(sql, params)
        return frame.item(0, 0) if frame.height else None
