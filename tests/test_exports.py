"""`agentmon export`: every format, --since, and the mistakes a user can make."""

from __future__ import annotations

import json

import duckdb

from agentmon_pipeline.app.cli import main
from agentmon_pipeline.config import settings
from agentmon_pipeline.storage import connect


def test_export_formats_since_and_mistakes(home, tmp_path, capsys):
    with connect(settings()) as con:
        con.execute("create table marts.fct_agent_runs as select * from (values "
                    "('r1', 'bot', timestamptz '2026-11-01 10:00+00', 1.5), "
                    "('r2', 'bot', timestamptz '2026-11-10 10:00+00', 2.5), "
                    "('r3', 'bot', timestamptz '2026-11-12 10:00+00', 3.5)) t(run_id, agent_id, started_at, cost_usd)")  # fmt: skip
        con.execute("create table marts.dim_things as select 1 as id")
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"runs.{fmt}"
        assert (
            main(["export", "fct_agent_runs", "--format", fmt, "--since", "2026-11-10", "--out", str(out)])
            == 0
        )
        assert f"wrote 2 rows of fct_agent_runs to {out}" in capsys.readouterr().out
        reader = {"csv": "read_csv", "json": "read_json", "parquet": "read_parquet"}[fmt]
        rows = duckdb.sql(f"select run_id, cost_usd from {reader}('{out}') order by 1").fetchall()
        assert rows == [("r2", 2.5), ("r3", 3.5)]
    assert json.loads((tmp_path / "runs.json").read_text())[0]["run_id"] == "r2"  # one JSON array

    assert main(["export", "marts.fct_agent_runs", "--out", str(tmp_path / "all.csv")]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    assert main(["export", "nope"]) == 2
    assert "no table 'nope' to export; exportable: " in capsys.readouterr().err
    assert main(["export", "dim_things", "--since", "2026-11-01"]) == 2
    assert "has no time column for --since" in capsys.readouterr().err


def test_prometheus_textfile_has_per_agent_gauges(home, tmp_path, monkeypatch):
    import dagster as dg

    from agentmon_pipeline.defs.exports.assets import prometheus_textfile

    with connect(settings()) as con:
        con.execute("""create table marts.fct_agent_runs as select * from (values
            ('bot', '1.0', now() - interval 1 hour, true, 100.0, 0.5, 10, false),
            ('bot', '1.0', now() - interval 2 hour, false, 300.0, 0.25, 20, false),
            ('bot', '1.0', now() - interval 3 day, true, 50.0, 1.0, 5, false),
            ('bot', '2.0', now() - interval 1 hour, true, 80.0, 9.0, 99, true))
            t(agent_id, agent_version, started_at, is_success, duration_ms, cost_usd, total_tokens, is_benchmark)""")
    target = tmp_path / "textfile" / "agentmon.prom"
    monkeypatch.setenv("AGENTMON_PROMETHEUS_TEXTFILE", str(target))
    assert dg.materialize([prometheus_textfile], instance=dg.DagsterInstance.ephemeral()).success
    samples = dict(
        line.rsplit(" ", 1) for line in target.read_text().splitlines() if not line.startswith("#")
    )
    labels = '{agent_id="bot",agent_version="1.0"}'
    assert samples[f"agentmon_agent_runs_24h{labels}"] == "2"
    assert samples[f"agentmon_agent_success_rate{labels}"] == "0.5"
    assert samples[f"agentmon_agent_cost_usd_total{labels}"] == "1.75"
    assert not any('agent_version="2.0"' in k for k in samples)  # benchmark runs are not production
    assert "# TYPE agentmon_agent_cost_usd_total counter" in target.read_text()
    assert not list(target.parent.glob(".*.tmp"))  # written under a temporary name, then renamed
