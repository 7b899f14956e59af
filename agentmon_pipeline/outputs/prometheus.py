"""A Prometheus textfile (for node_exporter's textfile collector) with per-agent gauges.

Written atomically (a temporary file renamed over the old one), as the collector requires, to
`$AGENTMON_PROMETHEUS_TEXTFILE` or `$AGENTMON_HOME/exports/agentmon.prom`.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentmon_pipeline.config import Settings
from agentmon_pipeline.storage import table_exists

# name, type, help, SQL over production runs of the last 24 hours (window) or all time (total)
GAUGES = [
    ("agentmon_agent_runs_24h", "gauge", "Runs in the last 24 hours.", "count(*) filter (where recent)"),
    ("agentmon_agent_success_rate", "gauge", "Share of successful runs in the last 24 hours.",
     "avg(is_success::int) filter (where recent)"),
    ("agentmon_agent_p95_duration_ms", "gauge", "95th percentile of run duration in the last 24 hours, ms.",
     "percentile_cont(0.95) within group (order by duration_ms) filter (where recent)"),
    ("agentmon_agent_cost_usd_total", "counter", "Cost of all runs in the warehouse, USD.", "sum(cost_usd)"),
    ("agentmon_agent_tokens_total", "counter", "Tokens of all runs in the warehouse.", "sum(total_tokens)"),
]  # fmt: skip


def _label(value: str | None) -> str:
    return (value or "").replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(con) -> str:
    if not table_exists(con, "marts", "fct_agent_runs"):
        return ""
    selects = ", ".join(f"{sql} as {name}" for name, _, _, sql in GAUGES)
    rows = con.execute(f"""
        select agent_id, agent_version, {selects}
        from (select *, started_at >= now() - interval '24 hour' as recent
              from marts.fct_agent_runs where not is_benchmark and agent_id is not null) as runs
        group by 1, 2 order by 1, 2
    """).fetchall()  # fmt: skip
    lines = []
    for i, (name, kind, text, _) in enumerate(GAUGES):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for row in rows:
            value = row[2 + i]
            if value is None:
                continue
            labels = f'agent_id="{_label(row[0])}",agent_version="{_label(row[1])}"'
            lines.append(f"{name}{{{labels}}} {float(value):.10g}")
    return "\n".join(lines) + "\n"


def textfile_path(s: Settings) -> Path:
    override = os.environ.get("AGENTMON_PROMETHEUS_TEXTFILE")
    return Path(override).expanduser() if override else s.home / "exports" / "agentmon.prom"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
