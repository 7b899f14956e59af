"""A user's own data from the first hour, through Dagster: every asset succeeds on any amount of
history, analyses that need more say how much, nothing NaN is written, no hostile line blocks
ingestion, and a user's home runs no example suites."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from agentmon_pipeline.app.cli import main
from agentmon_pipeline.config import settings
from agentmon_pipeline.numbers import plain
from tests.first_day import SHAPES, metric_records, run_records, shape, this_hour, write_jsonl
from tests.hostile import HOSTILE, good_span, hostile_file_text


def run_production_job() -> dg.ExecuteInProcessResult:
    """Every asset `agentmon run` materializes except the benchmark suites (the example suites
    belong to the demo) and retention."""
    from agentmon_pipeline.definitions import defs

    selection = dg.AssetSelection.all() - dg.AssetSelection.groups("evals", "maintenance")
    job = dg.define_asset_job("first_day", selection=selection)
    resolved = dg.Definitions(assets=defs.assets, jobs=[job], resources=defs.resources).resolve_job_def(
        "first_day"
    )
    return resolved.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def rows(sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def non_finite_values() -> list[str]:
    """Every double column of analytics.* and alerts.* that holds a NaN or an infinity."""
    columns = rows(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('analytics', 'alerts') and data_type = 'DOUBLE'"
    )
    return [f"{s}.{t}.{c}" for s, t, c in columns
            if rows(f'select count(*) from {s}.{t} where not isfinite("{c}")')[0][0]]  # fmt: skip


def ledger_balances() -> bool:
    return rows("select count(*) from raw.ingested_files where lines <> loaded + quarantined") == [(0,)]


def readiness() -> dict[tuple[str, str | None], tuple]:
    return {(a, g): (status, has, needs) for a, g, status, has, needs in
            rows("select analysis, agent_id, status, has, needs from analytics.readiness")}  # fmt: skip


@pytest.mark.slow
def test_three_hours_of_one_agent_as_a_new_user(tmp_path, capsys):
    """The issue's 'done when': a fresh home, one landing file of three hours of one agent,
    `agentmon run` as a user types it (no example suites, no example config)."""
    home = tmp_path / "home"
    shape("three_hours_one_agent", home / "landing")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMON_", "MONITORING_"))}
    env |= {"AGENTMON_HOME": str(home), "MONITORING_SETTLE_SECONDS": "0", "DO_NOT_TRACK": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)

    def agentmon(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentmon_pipeline.app.cli", *argv], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip

    run = agentmon("run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = run.stdout[run.stdout.index("agentmon run succeeded") :]
    assert "files ingested      1" in summary and "benchmark suites" not in summary
    assert "waiting for history anomalies, correlations, forecasts, version_comparisons" in summary
    assert "findings" not in summary  # nothing about agents the user never heard of, nothing from 3 hours
    with pytest.MonkeyPatch.context() as mp:  # status imports no Dagster: in this process
        mp.setenv("AGENTMON_HOME", str(home))
        assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "analyses waiting for more history:" in status
    assert "forecasts            solo-bot: has 0 of the 3 complete days it needs" in status
    # three hours from a first run within an hour: one or two whole hours, complete
    assert re.search(r"anomalies            solo-bot: has [12] of the 72 complete hours it needs", status)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        cost = con.execute("select sum(cost_usd) from marts.fct_agent_runs").fetchone()[0]
        assert 0 < cost < 1 and f"cost (USD)     {plain(float(cost))}\n" in status  # not rounded to 0.0
        assert con.execute("select distinct agent_id from marts.fct_agent_runs").fetchall() == [("solo-bot",)]
        assert con.execute("select count(*) from evals.runs").fetchone()[0] == 0
        assert (home / "suites").is_dir()  # where the user's own suites go
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [*(s for s in SHAPES if s != "three_hours_one_agent"), "benchmark_runs_only"]
)
def test_every_asset_succeeds_on_any_amount_of_history(home, tmp_path, monkeypatch, name):
    config = tmp_path / "agentmon.yaml"  # budgets too: the budget burn must cope with any history
    config.write_text("budgets:\n  monthly_usd: 50\n  agents:\n    solo-bot: 10\n")
    monkeypatch.setenv("AGENTMON_CONFIG", str(config))
    if name == "benchmark_runs_only":  # a suite was run, nothing was dropped: no production run
        from agentmon_pipeline.config import project_dir
        from agentmon_pipeline.evaluation.service import run_and_record

        run_and_record(str(project_dir() / "evals" / "suites" / "support-qa.yaml"), versions=["1.0"])
    else:
        shape(name, settings().landing_dir)
    result = run_production_job()
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success and not failed, failed
    assert ledger_balances()
    assert non_finite_values() == []
    ready = readiness()
    if name in ("metrics_and_events_only", "benchmark_runs_only"):  # no production run at all
        assert ready[("forecasts", None)] == ("waiting", 0, 3)
        assert ready[("budget_burn", "solo-bot")] == ("waiting", 0, 1)
        assert ready[("anomalies", None)] == ("waiting", 0, 72)
        assert rows("select count(*) from analytics.forecasts") == [(0,)]
        if name == "benchmark_runs_only":
            assert rows("select count(*) > 0, bool_and(is_benchmark) from marts.fct_agent_runs") == [
                (True, True)
            ]
    else:
        assert ready[("forecasts", "solo-bot")][0] == "waiting"
        assert ready[("anomalies", "solo-bot")][0] == "waiting"
        assert rows("select count(*) from analytics.anomalies") == [(0,)]
    if name == "one_day_two_versions":
        # two versions, but the new one has not had its first look (3 days): it waits, and says so
        assert ready[("version_comparisons", "solo-bot")] == ("waiting", 0, 3)
        assert ready[("budget_burn", "solo-bot")][0] == "ready"  # 29 complete hours hold a midnight
        assert rows("select count(*) from analytics.budget_burn") == [(2,)]
        assert rows("select count(*) from analytics.version_comparisons") != [(0,)]
    # the hour still filling is not judged: nothing about it anywhere
    assert rows(
        f"select count(*) from analytics.anomalies where bucket_start >= '{this_hour().isoformat()}'"
    ) == [(0,)]


@pytest.mark.slow
def test_hostile_lines_and_symlinks_never_block_ingestion(home, tmp_path):
    """One file per hostile class, a line of 20 MB, symlinks out of the folder: each hostile line
    is quarantined with its reason, each symlink refused, everything else loads in the same run."""
    landing = settings().landing_dir
    for name in HOSTILE:
        (landing / f"{name}.jsonl").write_text(hostile_file_text(name))
    write_jsonl(landing / "long-line.jsonl", [good_span("long", input="y" * 5_000_000)])
    (landing / "binary.bin").write_bytes(b"\x00\x01garbage")  # a file that cannot be read: quarantined whole
    (landing / "mixed.jsonl").write_text(json.dumps(good_span("mixed")) + "\nnonsense\n")
    (tmp_path / "elsewhere").mkdir()
    write_jsonl(tmp_path / "elsewhere" / "theirs.jsonl", [good_span("theirs")])
    os.symlink(tmp_path / "elsewhere", landing / "linked-dir")
    os.symlink("/etc/passwd", landing / "passwd.jsonl")
    result = run_production_job()
    assert result.success
    assert ledger_balances()
    ledger = {Path(p).stem: (status, reason) for p, status, reason in
              rows("select file_path, status, reason from raw.ingested_files")}  # fmt: skip
    for name, (_, reason) in HOSTILE.items():
        assert ledger[name][0] == ("loaded" if reason is None else "partial"), name
        if reason:
            [(found,)] = rows(f"select reason from raw.quarantine where file_path like '%/{name}.jsonl'")
            assert reason in found
    assert rows("select file_name, status, lines, loaded, quarantined from raw.ingested_files "
                "where file_name in ('binary.bin', 'mixed.jsonl') order by 1") == [
        ("binary.bin", "quarantined", 1, 0, 1), ("mixed.jsonl", "partial", 2, 1, 1)]  # fmt: skip
    assert ledger["passwd"] == ("refused", "symlink to /etc/passwd, outside the landing folder: not read")
    assert ledger["linked-dir"][0] == "refused"
    spans = {s for (s,) in rows("select span_id from raw.spans")}
    assert {f"ok-{name}" for name in HOSTILE} | {"long", "mixed"} <= spans and "theirs" not in spans
    assert non_finite_values() == []


# --- property-based: small random landing folders ------------------------------------------------

HOSTILE_NAMES = sorted(HOSTILE)


@st.composite
def landing_folders(draw) -> list[tuple[str, list[str]]]:
    """Files of agents with versions over some hours, error shares, metrics-only files, lines
    that are not JSON and hostile values."""
    files = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["runs", "runs", "metrics", "bad"]))
        if kind == "runs":
            hours = draw(st.sampled_from([0.5, 2, 7, 30]))
            records = run_records(
                draw(st.sampled_from(["a-bot", "b-bot"])), draw(st.sampled_from(["1", "2"])),
                this_hour() - timedelta(hours=hours), hours,
                draw(st.sampled_from([0.5, 4, 20])), draw(st.sampled_from([0.0, 0.2, 1.0])), seed=draw(st.integers(0, 99)),
            )  # fmt: skip
            lines = [json.dumps(r) for r in records]
        elif kind == "metrics":
            lines = [json.dumps(r) for r in metric_records(this_hour() - timedelta(hours=3), 3)]
        else:
            lines = [json.dumps(good_span(f"g{i}"))]
            lines += draw(st.lists(st.sampled_from(["not json", "[1, 2]", "{}", "null"]), max_size=3))
            lines += [HOSTILE[n][0] for n in draw(st.lists(st.sampled_from(HOSTILE_NAMES), max_size=3))]
        files.append((f"f{i}-{kind}.jsonl", lines))
    return files


@pytest.mark.slow
@hsettings(max_examples=2, deadline=None, derandomize=True, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(folder=landing_folders())
def test_any_small_landing_folder_runs_and_the_ledger_balances(home, tmp_path_factory, folder):
    from agentmon_pipeline.home import ensure_home

    with (
        pytest.MonkeyPatch.context() as mp
    ):  # a fresh home per example (the worker's warehouse path, emptied)
        mp.setenv("AGENTMON_HOME", str(tmp_path_factory.mktemp("prop") / "home"))
        warehouse = settings().warehouse_path
        for path in (warehouse, Path(f"{warehouse}.wal")):
            path.unlink(missing_ok=True)
        landing = ensure_home().landing_dir
        for name, lines in folder:
            (landing / name).write_text("".join(line + "\n" for line in lines))
        result = run_production_job()
        assert result.success
        # a file with the same bytes as another is a duplicate: the ledger counts its lines once
        contents = {"".join(line + "\n" for line in lines) for _, lines in folder}
        found = sum(len([line for line in text.splitlines() if line.strip()]) for text in contents)
        assert rows("select sum(lines), sum(loaded) + sum(quarantined) from raw.ingested_files") == [
            (found, found)
        ]
        assert non_finite_values() == []
