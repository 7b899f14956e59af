"""agentmon: an orchestrated batch pipeline for AI agent telemetry (Dagster + dbt + DuckDB)."""

__version__ = "0.1.0"
