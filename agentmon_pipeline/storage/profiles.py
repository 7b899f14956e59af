"""What dbt's profiles.yml reads to reach the warehouse, for each engine: the one place that maps
a warehouse's settings (a DuckDB file, MONITORING_DB_URL's PostgreSQL or Spark) to dbt's target."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlsplit

from agentmon_pipeline.config import Settings


def dbt_environment(s: Settings) -> dict[str, str]:
    """What dbt_project/profiles.yml reads: the target, and the warehouse's file or server."""
    if s.warehouse_path is not None:
        return {"AGENTMON_DBT_PROFILE_TARGET": "duckdb", "AGENTMON_WAREHOUSE_PATH": str(s.warehouse_path)}
    if s.backend == "spark":
        return {"AGENTMON_DBT_PROFILE_TARGET": "spark", **spark_environment(s)}
    url = urlsplit(s.warehouse_url)
    query = dict(parse_qsl(url.query))
    return {
        "AGENTMON_DBT_PROFILE_TARGET": "postgres",
        "AGENTMON_PG_HOST": url.hostname or query.get("host", "localhost"),
        "AGENTMON_PG_PORT": str(url.port or query.get("port", 5432)),
        "AGENTMON_PG_USER": unquote(url.username or query.get("user", "")),
        "AGENTMON_PG_PASSWORD": unquote(url.password or query.get("password", "")),
        "AGENTMON_PG_DBNAME": unquote(url.path.lstrip("/")) or query.get("dbname", "postgres"),
        "AGENTMON_PG_SSLMODE": "require" if s.warehouse_ssl else query.get("sslmode", "prefer"),
        "PGTZ": "UTC",  # dbt's sessions bucket days and hours in UTC, as DuckDB's do
    }


def spark_environment(s: Settings) -> dict[str, str]:
    """Where a Spark warehouse is (what profiles.yml's spark target and storage.spark read): the
    master (spark://local[2] is local mode, spark://host:7077 a standalone cluster's master), the
    tables' folder and the catalog's (an embedded Derby metastore), under the home by default."""
    rest = s.warehouse_url[len("spark://") :]
    master = rest if rest.startswith("local") else s.warehouse_url
    return {
        "AGENTMON_SPARK_MASTER": master,
        "AGENTMON_SPARK_WAREHOUSE": os.environ.get("AGENTMON_SPARK_WAREHOUSE")
        or str(s.spark_dir / "warehouse"),
        "AGENTMON_SPARK_METASTORE": os.environ.get("AGENTMON_SPARK_METASTORE")
        or str(s.spark_dir / "metastore"),
        "AGENTMON_SPARK_DRIVER_MEMORY": os.environ.get("AGENTMON_SPARK_DRIVER_MEMORY", "2g"),
    }
