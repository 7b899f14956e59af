"""A process's agentmon home: the state folders, the Dagster instance's config and the environment
that Dagster and dbt read. Called by the commands and the Dagster definitions before they start
(never by a connection to the warehouse)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from agentmon_pipeline.config import CONFIG_NAMES, DEMO_MARKER, Settings, project_dir, settings
from agentmon_pipeline.storage.profiles import dbt_environment

DAGSTER_YAML = """\
# Written by agentmon. The warehouse is DuckDB, which allows one writing process per file,
# so runs are queued and executed one at a time. (Not a concurrency pool: a run killed while it
# holds a pool slot would block every later run until the slot is freed by hand.)
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
run_queue:
  dequeue_interval_seconds: 2
"""


def ensure_home(s: Settings | None = None) -> Settings:
    """Create the state folders and the Dagster instance config (telemetry off, one run at a time)."""
    s = s or settings()
    for folder in (s.home, s.landing_dir, s.dagster_home):
        folder.mkdir(parents=True, exist_ok=True)
    if s.warehouse_path is not None:
        s.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    if s.suites_dir is not None and s.suites_dir == s.home / "suites":
        s.suites_dir.mkdir(exist_ok=True)  # where a user's own benchmark suites go
    dagster_yaml = s.dagster_home / "dagster.yaml"
    if not dagster_yaml.exists() or dagster_yaml.read_text() != DAGSTER_YAML:
        dagster_yaml.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(s.dagster_home)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.update(dbt_environment(s))
    # dagster-dbt reuses dbt's partial parse from DBT_TARGET_PATH's folder: the one the manifest
    # is prepared in (AGENTMON_DBT_TARGET; parallel test workers each have their own)
    os.environ["DBT_TARGET_PATH"] = s.dbt_target
    # dbt is installed beside this Python; find it even when the virtualenv is not activated.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return s


def mark_demo_home(s: Settings, written: dict | None = None) -> list[str]:
    """`agentmon demo` makes its home a demo home: the example agentmon.yaml and agents.yaml are
    copied into it (so every command finds them, as it would find a user's own), and a marker says
    that the example suites of evals/suites/ apply and what the demo wrote (`written`: its window
    and counts). Returns what it did, one line each."""
    done = []
    suites = s.home / "suites"
    if suites.is_dir() and not any(suites.iterdir()):
        suites.rmdir()  # a demo home runs evals/suites/: an empty folder here would be ignored
    for name in CONFIG_NAMES:
        source, target = project_dir() / "examples" / name, s.home / name
        if target.exists() and target.read_bytes() != source.read_bytes():
            done.append(f"kept your {target} (the example is {source})")
            continue
        shutil.copyfile(source, target)
        done.append(f"copied {source.name} of examples/ to {target}")
    (s.home / DEMO_MARKER).write_text(json.dumps({
        "written_by": "agentmon demo",
        "means": "the example suites of evals/suites/ run in this home unless AGENTMON_SUITES_DIR says otherwise",
        **({"wrote": written} if written else {}),
    }, indent=2) + "\n")  # fmt: skip
    return done


def demo_written(s: Settings) -> dict | None:
    """What `agentmon demo` wrote into this home ({} when a marker of an older agentmon does not
    say), or None when the home holds no demo."""
    marker = s.home / DEMO_MARKER
    if not marker.exists():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("wrote") or {}
    except (ValueError, AttributeError):
        return {}
