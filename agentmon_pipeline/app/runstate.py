"""Is a run needed? What the results of `agentmon run` depend on, read from the ledger, the files
and the clock before Dagster or dbt is imported: a run with nothing new and nothing due answers
in about a second instead of starting them.

A run's results are a function of (1) the warehouse's inputs: the files loaded (the ledger), the
registry's changes, the benchmark runs, the prunes; (2) what builds them: the dbt models, macros
and seeds (model prices), the agentmon.yaml and agents.yaml files, the benchmark suites; and (3)
the hour (budgets, forecasts and readiness count days and hours up to now). After a successful
run these are written to `last-run.json` in AGENTMON_HOME; the next run compares. Anything that
differs, a settled file in the landing folder the ledger has not seen, a suite that changed, or
another UTC hour, and the run goes ahead. No Dagster or dbt import here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agentmon_pipeline.config import Settings
from agentmon_pipeline.errors import WarehouseMissing
from agentmon_pipeline.storage import connect, table_exists

STATE_FILE = "last-run.json"

# (schema, table, SQL of its state): rows another command or the UI's runs add change these
WAREHOUSE_INPUTS = (
    ("raw", "ingested_files", "count(*), coalesce(max(load_id), 0)"),
    ("registry", "audit_log", "count(*)"),
    ("evals", "runs", "count(*)"),
    ("raw", "retention_log", "count(*)"),
)


def project_files(project_dir: Path, folders: tuple[str, ...] = ("models", "macros", "seeds")) -> list[Path]:
    """The files of the dbt project's `folders`, in a fixed order."""
    return [
        path for folder in folders for path in sorted((project_dir / folder).rglob("*")) if path.is_file()
    ]


def models_digest(project_dir: Path) -> str:
    """A hash of the SQL that builds the marts (models, macros, seeds, project file)."""
    digest = hashlib.sha256()
    for path in project_files(project_dir):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes())
    digest.update((project_dir / "dbt_project.yml").read_bytes())
    return digest.hexdigest()


def _file_digest(path: Path | None) -> str | None:
    from agentmon_pipeline.ingest.detect import sha256_of

    return sha256_of(path) if path is not None and path.is_file() else None


def inputs(s: Settings, con, now: datetime | None = None) -> dict:
    """What a run's results depend on (module docstring), as JSON-able values."""
    now = now or datetime.now(UTC)
    warehouse = {
        f"{schema}.{table}": [int(v) for v in con.execute(f"select {sql} from {schema}.{table}").fetchone()]
        for schema, table, sql in WAREHOUSE_INPUTS
        if table_exists(con, schema, table)
    }
    return {
        "warehouse": s.warehouse_label,
        "tables": warehouse,
        "models": models_digest(s.dbt_project_dir),
        "config": _file_digest(s.config_file),
        "agents": _file_digest(s.agents_file),
        "hour": now.strftime("%Y-%m-%dT%H"),
    }


@dataclass
class Idle:
    """Nothing to do: why, for the one line `agentmon run` prints."""

    finished_at: str
    run_id: str
    waiting_files: int  # files still being written: they load at the next run once settled

    def render(self) -> str:
        text = (
            f"agentmon run: nothing new since the last run ({self.run_id[:8]}, {self.finished_at} UTC): no "
            "settled file waiting in the landing folder, no suite, dbt model or configuration changed, same hour. The "
            "results in the warehouse are current (agentmon status shows them; agentmon run --force runs anyway)."
        )
        if self.waiting_files:  # first, on a line of its own: the user has just dropped them
            text = (
                f"agentmon run: {self.waiting_files} file(s) still being written in the landing folder (modified in "
                "the last MONITORING_SETTLE_SECONDS): run again in a few seconds to load them.\n" + text
            )
        return text


def nothing_to_do(s: Settings, settle_seconds: float) -> Idle | None:
    """An Idle when the last successful run saw the same inputs in this hour and the landing folder
    holds no settled file the ledger has not seen; None when a run is needed."""
    from agentmon_pipeline.ingest.landing import unloaded_files

    path = s.home / STATE_FILE
    if not path.exists():
        return None
    try:
        last = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        with connect(s, read_only=True) as con:
            if inputs(s, con) != last.get("inputs"):
                return None
            found, waiting = unloaded_files(con, s.landing_dir, settle_seconds)
            if found:
                return None
            from agentmon_pipeline.app.runner import suites_due

            if suites_due(con)[0]:
                return None
    except WarehouseMissing:
        return None
    return Idle(last.get("finished_at", "?"), last.get("run_id", "?"), waiting)


def forget(s: Settings) -> None:
    """A run starts: until it succeeds, the next one runs too."""
    (s.home / STATE_FILE).unlink(missing_ok=True)


def remember(s: Settings, run_id: str) -> None:
    """A run succeeded: what it saw, for the next run to compare."""
    with connect(s, read_only=True) as con:
        state = {
            "run_id": run_id,
            "finished_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            "inputs": inputs(s, con),
        }
    (s.home / STATE_FILE).write_text(json.dumps(state, indent=1))
