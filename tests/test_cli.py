"""The `agentmon` command as a user runs it: demo, run, status, and user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.app.cli import main
from agentmon_pipeline.config import settings
from tests.conftest import firing_alerts


def test_a_second_demo_in_the_same_home_writes_nothing(home, capsys):
    """make demo twice: the second would add a month of runs at new ids over the first (double the
    traffic); it says the home holds the demo and how to start afresh, and writes nothing."""
    assert main(["demo", "--days", "1", "--agents", "2", "--end", "2026-11-20T00:00Z"]) == 0
    landing = settings().landing_dir
    first = sorted((p.name, p.stat().st_size) for p in landing.rglob("*") if p.is_file())
    capsys.readouterr()
    assert main(["demo", "--days", "1", "--agents", "2"]) == 0
    out = capsys.readouterr().out
    assert "already holds the demo (2026-11-19 00:00 to 2026-11-20 00:00 UTC): nothing written" in out
    assert f"rm -rf {settings().home}" in out
    assert sorted((p.name, p.stat().st_size) for p in landing.rglob("*") if p.is_file()) == first


@pytest.mark.slow
def test_demo_run_status_end_to_end(home, capsys):
    """What `make demo` does, on a short window: exit 0 and a summary with real numbers."""
    assert main(["demo", "--days", "2", "--agents", "3", "--seed", "3", "--end", "2026-11-20T00:00Z"]) == 0
    assert "deliberately bad lines" in capsys.readouterr().out
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "agentmon run succeeded" in out
    assert "lines quarantined   4" in out
    assert "0 failed" in out and "make ui" in out
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    runs = con.execute("select count(*) from marts.fct_agent_runs where not is_benchmark").fetchone()[0]
    con.close()
    assert f"agent runs in marts {runs} (production)" in out and runs > 100
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert f"agent runs     {runs} (production)" in status
    assert "not valid JSON  (late-arrivals-with-bad-lines.jsonl)" in status  # the reason names its file

    # the README's `agentmon run` after `make demo`, then the UI's ingest job: the same config
    # (the demo home's own agentmon.yaml), the same alerts (none resolved and fired again), the
    # same findings, and no benchmark rerun (nothing they measure changed)
    alerts, findings = firing_alerts(), summary_findings(out)
    assert alerts and findings
    assert main(["run", "--force"]) == 0
    again = capsys.readouterr().out
    assert "3 unchanged since their last run (not rerun)" in again
    assert (firing_alerts(), summary_findings(again)) == (alerts, findings)
    # (the UI's entry point, a real `dagster dev` and its ingest_job: tests/test_ui.py)
    assert_a_run_with_nothing_new_answers_from_the_ledger()


def assert_a_run_with_nothing_new_answers_from_the_ledger():
    """Nothing new and nothing due: `agentmon run` says so without importing Dagster or dbt (a
    fresh process, as a user's). A settled new file, a changed config or dbt model, another
    hour: a run is needed again."""
    import os
    from datetime import UTC, datetime, timedelta

    from agentmon_pipeline.app import runstate
    from agentmon_pipeline.storage import connect

    s = settings()
    last = json.loads((s.home / runstate.STATE_FILE).read_text())["inputs"]["hour"]
    if last != f"{datetime.now(UTC):%Y-%m-%dT%H}":  # the last run was in the hour before: it is due again
        assert main(["run"]) == 0
    check = ("import sys; from agentmon_pipeline.app.cli import main; code = main(['run']); "
             "assert not {'dagster', 'dbt', 'dagster_dbt'} & set(sys.modules), 'imported'; sys.exit(code)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("agentmon run: nothing new since the last run") and "--force" in proc.stdout
    assert runstate.nothing_to_do(s, 10) is not None
    with connect(s, read_only=True) as con:
        now, later = (
            runstate.inputs(s, con),
            runstate.inputs(s, con, now=datetime.now(UTC) + timedelta(hours=1)),
        )
    assert now != later and {k: v for k, v in now.items() if k != "hour"} == {
        k: v for k, v in later.items() if k != "hour"
    }
    new = s.landing_dir / "new.jsonl"
    new.write_text('{"trace_id": "t", "span_id": "s", "name": "x", "start_time": "2026-11-19T10:00:00Z"}\n')
    assert runstate.nothing_to_do(s, 10) is not None  # still being written: waits for the next run
    assert "1 file(s) still being written" in runstate.nothing_to_do(s, 10).render()
    os.utime(new, (new.stat().st_mtime - 60, new.stat().st_mtime - 60))
    assert runstate.nothing_to_do(s, 10) is None  # settled: a run loads it
    new.unlink()
    assert runstate.nothing_to_do(s, 10) is not None
    s.config_file.write_text(s.config_file.read_text() + "\n# changed\n")
    assert runstate.nothing_to_do(s, 10) is None


def summary_findings(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("    ") and not line.startswith("     ")
            and line.split()[0] in ("production", "budget", "anomaly", "benchmark")]  # fmt: skip


def test_demo_is_deterministic(tmp_path):
    from datetime import UTC, datetime

    from agentmon_pipeline.devtools.demo import generate_demo

    end = datetime(2026, 11, 1, tzinfo=UTC)
    generate_demo(tmp_path / "a", days=1, seed=5, end=end)
    generate_demo(tmp_path / "b", days=1, seed=5, end=end)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["demo", "--days", "0"], {}, "must be at least 1"),
        (["demo", "--end", "yesterday"], {}, "is not an ISO 8601 time"),
        (["demo", "--agents", "20"], {}, "the demo has 8 agents at most"),
        (["prune", "--days", "-3"], {}, "-3 must be at least 1"),
        (
            ["status"],
            {"MONITORING_DB_URL": "mysql://x"},
            "MONITORING_DB_URL='mysql://x': expected duckdb:///",
        ),
        (
            ["status"],
            {"MONITORING_RETENTION_DAYS": "ninety"},
            "MONITORING_RETENTION_DAYS='ninety': expected a whole number",
        ),
        (["run"], {"AGENTMON_CONFIG": "/nonexistent/agentmon.yaml"}, "does not exist"),
        (["run"], {"MONITORING_INGEST_MEMORY": "lots"}, "MONITORING_INGEST_MEMORY='lots': expected a size"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(home, tmp_path, argv, env, message):
    import os

    proc = subprocess.run(  # from another working directory: commands work from anywhere
        [sys.executable, "-m", "agentmon_pipeline.app.cli", *argv],
        env={**os.environ, **env},
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[-1] and "Traceback" not in proc.stderr


def test_eval_power_plans_a_pass_rate(capsys):
    """What 400 cases of Beta(2, 2) difficulty can find: the MDE the simulations measure (0.0887 with
    one run per case, 0.0626 with two: tests/evaluation/test_stats.py) and what more runs buy."""
    argv = [
        "eval",
        "power",
        "--cases",
        "400",
        "--baseline-rate",
        "0.5",
        "--effect",
        "0.1",
        "--difficulty-sd",
        "0.2236",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "400 cases, pass rate 0.5 in the baseline (per-case spread 0.2236), two-sided alpha 0.05"
    )
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line[:1].isdigit()}
    assert rows["1"] == ["0.0879", "0.89", "309"] and rows["2"] == ["0.0625", "0.99", "156"]
    assert list(rows) == ["1", "2", "3", "5"]
    # Holm over 5 metrics: each alone at 0.01, so a larger MDE; and a row for the runs asked for
    assert main([*argv, "--metrics", "5", "--repeats", "4"]) == 0
    out = capsys.readouterr().out
    assert "with Holm over 5 metrics (0.01 for one alone)" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line[:1].isdigit()}
    assert list(rows) == ["1", "2", "3", "4", "5"] and float(rows["1"][0]) > 0.0879


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "agentmon: give a suite (agentmon eval power SUITE) or a pass rate to plan for"),
        (["--cases", "40"], "agentmon: --cases needs --baseline-rate too"),
        (["--baseline-rate", "0.5"], "agentmon: --baseline-rate needs --cases too"),
        (["--cases", "1", "--baseline-rate", "0.5"], "argument --cases: 1 must be at least 2"),
        (["--cases", "40", "--baseline-rate", "1.5"], "argument --baseline-rate: 1.5 must be between 0 and 1"),
        (["--cases", "40", "--baseline-rate", "0.5", "--effect", "0.6"],
         "agentmon: --effect 0.6: a pass rate of 0.5 cannot drop by that much"),
        (["--cases", "40", "--baseline-rate", "0.5", "--effect", "-0.1"], "argument --effect: -0.1 must be greater than 0"),
        (["--cases", "40", "--baseline-rate", "0.5", "--effect", "ten"], "argument --effect: 'ten' is not a number"),
        (["--cases", "40", "--baseline-rate", "0.5", "--difficulty-sd", "0.5"],
         "agentmon: --difficulty-sd 0.5: per-case pass rates around 0.5 spread by less than 0.5"),
        (["--cases", "40", "--baseline-rate", "0.5", "--alpha", "1"], "argument --alpha: 1 must be between 0 and 1"),
        (["--cases", "40", "--baseline-rate", "0.5", "--repeats", "0"], "argument --repeats: 0 must be at least 1"),
        (["--cases", "40", "--baseline-rate", "0.5", "--metric", "x"], "agentmon: --metric picks a metric of a suite"),
        (["support-qa", "--cases", "40"], "agentmon: --cases describes a suite without a stored run"),
    ],
)  # fmt: skip
def test_eval_power_mistakes_are_one_line(home, capsys, argv, message):
    try:
        code = main(["eval", "power", *argv])
    except SystemExit as exit_:  # argparse's own checks
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_invalid_config_names_file_and_key(home, tmp_path, monkeypatch):
    from agentmon_pipeline.config import load_config_file
    from agentmon_pipeline.errors import UserError

    cfg = tmp_path / "agentmon.yaml"
    cfg.write_text("alerts: {}\nbudgts: {}\n")
    monkeypatch.setenv("AGENTMON_CONFIG", str(cfg))
    with pytest.raises(UserError, match=r"agentmon.yaml: unknown key 'budgts'"):
        load_config_file()
    # retention is an environment variable, not a section: refused with its name, never ignored
    cfg.write_text("retention: {days: 1}\n")
    with pytest.raises(
        UserError,
        match=r"unknown key 'retention'; .* set by the environment variable MONITORING_RETENTION_DAYS",
    ):
        load_config_file()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("suites: {schedule: 'every night'}", "suites.schedule: 'every night' is not a cron expression"),
        ("budgets: {monthly_usd: -5}", "budgets.monthly_usd: expected a positive amount"),
        ("alerts: {rules: 3}", "alerts"),
        ("redaction: {enabled: 'false'}", "redaction.enabled: expected true or false, got 'false'"),
    ],
)
def test_agentmon_run_checks_every_section_before_it_starts(
    home, tmp_path, monkeypatch, capsys, section, message
):
    """Each feature checks its own section of agentmon.yaml; `agentmon run` asks them all first:
    exit 2, one line with the file and the key, and nothing run."""
    cfg = tmp_path / "agentmon.yaml"
    cfg.write_text(section + "\n")
    monkeypatch.setenv("AGENTMON_CONFIG", str(cfg))
    assert main(["run"]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and str(cfg) in err and message in err, err
    assert out == ""  # nothing ran


def test_status_says_busy_instead_of_crashing(home, monkeypatch):
    from agentmon_pipeline.app.runner import status_report
    from agentmon_pipeline.errors import WarehouseBusy
    from agentmon_pipeline.storage import connect, warehouse_lock

    with connect(settings()):
        pass  # a warehouse exists, and another process is writing it
    monkeypatch.setenv("AGENTMON_STATUS_WAIT", "0.5")
    code = "import time; from agentmon_pipeline.config import settings; from agentmon_pipeline.storage import warehouse_lock\nwith warehouse_lock(settings()):\n    print('held', flush=True); time.sleep(5)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="busy"):
            status_report()
    finally:
        holder.kill()
    with warehouse_lock(settings()):
        pass


@pytest.mark.parametrize("command", [["status"], ["alerts", "list"], ["registry", "list"], ["export", "fct_agent_runs"],
                                     ["alerts", "evaluate"], ["prune", "--days", "30"]])  # fmt: skip
def test_a_read_only_command_on_a_missing_warehouse_says_so_and_creates_nothing(
    tmp_path, monkeypatch, capsys, command
):
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"agentmon: no warehouse at {tmp_path / 'nowhere'}")
    assert list(tmp_path.iterdir()) == [], "a read-only command created files"


def test_connecting_to_the_warehouse_writes_only_the_warehouse_and_changes_no_environment(
    tmp_path, monkeypatch
):
    import os

    from agentmon_pipeline.storage import connect

    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MONITORING_DB_URL", raising=False)
    before = dict(os.environ)
    with connect(settings()) as con:
        con.execute("select 1").fetchall()
    assert dict(os.environ) == before
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["warehouse.duckdb", "warehouse.lock"]


def test_version_and_every_subcommand_says_what_it_does(capsys):
    from agentmon_pipeline.app.cli import build_parser

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("agentmon 0.")

    def walk(parser, path):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, child in action.choices.items():
                    yield [*path, name], child
                    yield from walk(child, [*path, name])

    commands = list(walk(build_parser(), []))
    assert len(commands) > 20
    assert [" ".join(path) for path, child in commands if not child.description] == []
    for path, child in commands:  # every help renders (a bare % in a help string crashed `eval --help`)
        assert child.format_help().startswith("usage: "), path
    for path in (["eval"], ["eval", "power"], ["run"]):
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0 and "usage:" in capsys.readouterr().out


def test_dagster_instance_runs_one_at_a_time_without_telemetry(home):
    import yaml

    config = yaml.safe_load((home / "dagster" / "dagster.yaml").read_text())
    assert config["telemetry"] == {"enabled": False} and config["nux"] == {
        "enabled": False
    }  # no first-visit modal
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1
    # no pool limit: a run killed while holding a pool slot would block every later run
    assert "pools" not in config["concurrency"]


def test_a_users_home_has_no_example_suites_or_config_and_a_demo_home_has(home, monkeypatch, capsys):
    from agentmon_pipeline.config import project_dir
    from agentmon_pipeline.home import mark_demo_home

    for name in ("AGENTMON_SUITES_DIR", "AGENTMON_CONFIG", "AGENTMON_AGENTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    s = settings()
    assert (s.suites_dir, s.config_file, s.agents_file) == (home / "suites", None, None)
    assert main(["eval", "list"]) == 0
    assert f"no suites in {home / 'suites'}: put yours there" in capsys.readouterr().out
    assert main(["eval", "run", "support-qa"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and f"the example is {project_dir() / 'evals' / 'suites' / 'support-qa.yaml'}" in err
    )
    mark_demo_home(s)  # what `agentmon demo` does
    demo = settings()
    assert demo.suites_dir == project_dir() / "evals" / "suites"
    assert demo.config_file == home / "agentmon.yaml"  # copied in: every entry point finds it there
    assert demo.agents_file == home / "agents.yaml"
    assert demo.config_file.read_text() == (project_dir() / "examples" / "agentmon.yaml").read_text()
    (home / "agentmon.yaml").write_text("budgets: {monthly_usd: 1}\n")  # a user's edit is kept
    assert "kept your" in mark_demo_home(demo)[0]
    assert (home / "agentmon.yaml").read_text() == "budgets: {monthly_usd: 1}\n"
    monkeypatch.setenv("AGENTMON_SUITES_DIR", str(home / "mine"))  # what the user names wins
    assert settings().suites_dir == home / "mine"


def test_numbers_are_plain_decimals():
    from agentmon_pipeline.numbers import plain

    assert [plain(x) for x in (46240.3, 18770, 12.5, 1.0, 0.0123, 0.000042, 0, None)] == [
        "46,240", "18,770", "12.5", "1", "0.0123", "0.000042", "0", "-"]  # fmt: skip
    assert plain(0.25, signed=True) == "+0.25" and plain(-1500, signed=True) == "-1,500"
    from datetime import date

    from agentmon_pipeline.numbers import p_value, runs_out

    assert (p_value(1.04e-84), p_value(0.0312), p_value(None)) == ("p < 0.001", "p = 0.031", "p = -")
    today = date(2026, 11, 28)
    assert runs_out(date(2026, 11, 27), today) == ", ran out on 2026-11-27"
    assert runs_out(date(2026, 12, 3), today) == ", runs out on 2026-12-03" and runs_out(None, today) == ""


@pytest.mark.slow
def test_a_file_that_needs_more_memory_fails_the_run_with_the_setting_named(home, capsys, monkeypatch):
    """The machine's limit, not the file's fault: the run fails (exit 1) and its stage line says
    what to change; the file is not quarantined and loads once there is room."""
    from agentmon_pipeline.devtools.bench import write_spans
    from agentmon_pipeline.ingest import limits

    write_spans(settings().landing_dir / "spans.jsonl", 50_000)
    monkeypatch.setenv("MONITORING_SETTLE_SECONDS", "0")
    monkeypatch.setattr(limits, "ingest_memory", lambda: 4 * 1000**2)
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    assert (
        "failed: spans.jsonl: ingesting it needs more memory than MONITORING_INGEST_MEMORY=1GB allows" in out
    )
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    assert con.execute("select count(*) from raw.ingested_files").fetchone()[0] == 0
    con.close()


def test_a_failing_dbt_test_fails_the_run_and_says_which_and_why(home, capsys, monkeypatch):
    """dbt's tests guard the marts: two rows of one span written into raw by hand (not by the
    loader, which keeps one) fail the grain test, the run fails (exit 1), and its stage line names
    the test and what it found; dbt's full output is in the run's log."""
    from agentmon_pipeline.storage import connect

    monkeypatch.setenv("MONITORING_SETTLE_SECONDS", "0")
    with connect(settings()) as con:
        con.execute(
            "insert into raw.spans (trace_id, span_id, name, kind, start_time, end_time, duration_ms, status, "
            "source_format, load_id, line_number) select 't', 's', 'x', 'agent', now(), now(), 0, 'ok', "
            "'native', 0, range from range(2)"
        )
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    failed = next(line for line in out.splitlines() if "agentmon_dbt_models failed" in line)
    assert "dbt build failed: Failure in test unique_combination_stg_raw__spans" in failed
    assert "Got 1 result" in failed
    log = next(line.split()[2] for line in out.splitlines() if line.strip().startswith("dbt's output"))
    assert "unique_combination_stg_raw__spans" in Path(log).read_text()


def test_the_run_summary_counts_the_files_still_being_written(home, monkeypatch):
    """A user copies a month of files into the landing folder and runs at once: the files modified
    in the last MONITORING_SETTLE_SECONDS wait, and the summary says so instead of a bare count."""
    from agentmon_pipeline.app.runner import RunSummary

    monkeypatch.setenv("MONITORING_SETTLE_SECONDS", "10")
    text = RunSummary(success=True, run_id="e8b939f8", files=1, waiting_files=30).render(settings())
    assert (
        "files ingested      1 (30 more waiting, modified in the last 10 s when the run looked: the next run loads them)"
        in text
    )
    assert "more waiting" not in RunSummary(success=True, run_id="e8b939f8", files=1).render(settings())


def test_a_reader_that_stops_early_does_not_break_a_command():
    """`agentmon run | head -1`: the reader closes the pipe while the command goes on. The next
    print raised BrokenPipeError inside the run (a traceback, exit 1, its state never recorded);
    now the output goes nowhere and the command finishes (here one whose reader is gone before
    its first line)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentmon_pipeline.app.cli",
            "eval",
            "power",
            "--cases",
            "400",
            "--baseline-rate",
            "0.8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # no reader left: every write of the command meets a broken pipe
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, stderr
    assert stderr == ""
