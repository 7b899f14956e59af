"""Exports as assets: the Prometheus textfile for node_exporter."""

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.outputs.prometheus import render, textfile_path, write_atomically
from agentmon_pipeline.storage import connect


@dg.asset(
    key=["exports", "prometheus_textfile"], deps=[["marts", "fct_agent_runs"]], group_name="exports",
    kinds={"prometheus"},
    description="Per-agent gauges (runs, success rate, p95 latency, cost, tokens) for node_exporter's textfile "
    "collector, at $AGENTMON_PROMETHEUS_TEXTFILE or $AGENTMON_HOME/exports/agentmon.prom.",
)  # fmt: skip
def prometheus_textfile() -> dg.MaterializeResult:
    s = settings()
    with connect(s, read_only=True) as con:
        text = render(con)
    path = textfile_path(s)
    write_atomically(path, text)
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return dg.MaterializeResult(metadata={"path": str(path), "samples": samples})
