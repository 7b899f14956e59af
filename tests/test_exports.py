"""`agentmon export`: every format, --since, and the mistakes a user can make."""

from __future__ import annotations

import json

import duckdb

from agentmon_pipeline.cli import main
from agentmon_pipeline.config import settings
from agentmon_pipeline.warehouse import connect


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
