"""The SDK is its own distribution: `pip install ./sdk` into a fresh virtualenv installs it with
psutil and prometheus-client only (no Dagster, dbt, DuckDB or pandas), and the files an agent
writes with it there load into the warehouse."""

from __future__ import annotations

import shutil
import subprocess
import sys

from agentmon_pipeline.config import project_dir, settings
from agentmon_pipeline.ingest.batch import ingest_landing
from agentmon_pipeline.storage import connect

AGENT = """
import importlib.util, sys
from agentmon_sdk import TelemetryCollector

platform = [m for m in ("agentmon_pipeline", "dagster", "dbt", "duckdb", "pandas", "polars", "pyarrow")
            if importlib.util.find_spec(m)]
assert not platform, f"the SDK's environment has {platform}"
collector = TelemetryCollector(landing_dir=sys.argv[1])
collector.start()
for ticket in range(5):
    with collector.trace("answer_ticket", agent_id="alone-bot", agent_version="1.0"):
        collector.record_llm_call("gpt-4o-mini", input_tokens=100 + ticket, output_tokens=10, duration_ms=50)
collector.stop()
"""


def test_the_sdk_installs_alone_and_what_it_writes_loads(home, tmp_path, monkeypatch):
    agent_env = tmp_path / "agent-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(agent_env)], check=True)
    python = str(agent_env / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    sdk = shutil.copytree(project_dir() / "sdk", tmp_path / "sdk")  # pip builds in the folder it installs
    installed = subprocess.run([*pip, "install", "--quiet", "--disable-pip-version-check", str(sdk)],
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    listed = subprocess.run([*pip, "list", "--format=freeze", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    names = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    assert names == {"agentmon-sdk", "psutil", "prometheus-client"}, names

    landing = settings().landing_dir
    # run from elsewhere than the repository, whose packages `python -c` would find in its folder
    agent = subprocess.run([python, "-c", AGENT, str(landing)], capture_output=True, text=True, check=False,
                           cwd=tmp_path)  # fmt: skip
    assert agent.returncode == 0, agent.stderr[-2000:]
    assert list(landing.glob("*.jsonl")), "the agent wrote no landing file"
    monkeypatch.setenv("MONITORING_SETTLE_SECONDS", "0")  # the SDK renames a file only when it is whole
    with connect(settings()) as con:
        ingest_landing(con, settings())
        runs, calls, tokens = con.execute(
            "select count(*) filter (where kind = 'agent'), count(*) filter (where kind = 'llm'), sum(input_tokens) "
            "from raw.spans where trace_id in (select trace_id from raw.spans where agent_id = 'alone-bot')"
        ).fetchone()
    assert (runs, calls, tokens) == (5, 5, 510)
