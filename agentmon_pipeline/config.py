"""Where agentmon keeps its state, read from the environment (SPEC §2).

Every setting has a default that works with no set-up, so that a fresh clone runs with
`make demo`. Settings are read when asked for, not at import, so tests can point
`AGENTMON_HOME` at a temporary folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentmon_pipeline.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent


def project_dir() -> Path:
    """The repository root: where `dbt_project/` and `evals/` live."""
    override = os.environ.get("AGENTMON_PROJECT_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return PACKAGE_DIR.parent


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_url: str
    warehouse_path: Path | None  # None when the warehouse is PostgreSQL or Spark
    landing_dir: Path
    retention_days: int
    log_level: str
    archive_processed: bool
    config_file: Path | None
    agents_file: Path | None = None
    suites_dir: Path | None = None

    @property
    def is_demo_home(self) -> bool:
        """Written by `agentmon demo`: the example suites apply (and its config was copied in)."""
        return (self.home / DEMO_MARKER).exists()

    @property
    def backend(self) -> str:
        """duckdb (a file, the default), postgres (MONITORING_DB_URL=postgresql://...) or spark
        (MONITORING_DB_URL=spark://local[2], spark://host:7077)."""
        if self.warehouse_path is not None:
            return "duckdb"
        return "spark" if self.warehouse_url.startswith("spark://") else "postgres"

    @property
    def spark_dir(self) -> Path:
        """A Spark warehouse's catalog (metastore) and tables, unless AGENTMON_SPARK_* say elsewhere."""
        return self.home / "spark"

    @property
    def warehouse_ssl(self) -> bool:
        return _bool_env("MONITORING_DB_SSL")

    @property
    def warehouse_label(self) -> str:
        """The warehouse as the user should see it: the file, or the URL without its password."""
        if self.warehouse_path is not None:
            return str(self.warehouse_path)
        return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", self.warehouse_url)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def benchmarks_dir(self) -> Path:
        """Where the benchmark suites write their calls' spans (loaded, flagged is_benchmark)."""
        return self.home / "benchmarks"

    @property
    def processed_dir(self) -> Path:
        return self.home / "processed"

    @property
    def lock_path(self) -> Path:
        return self.home / "warehouse.lock"

    @property
    def dbt_project_dir(self) -> Path:
        return project_dir() / "dbt_project"

    @property
    def dbt_target(self) -> str:
        """dbt's target folder inside the project; parallel test workers each use their own."""
        return os.environ.get("AGENTMON_DBT_TARGET", "target")


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r}: expected a whole number") from None
    if value < 0:
        raise UserError(f"{name}={raw!r}: expected a number >= 0")
    return value


def _bool_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def warehouse_path_from_url(url: str) -> Path | None:
    """`duckdb:////abs/path.duckdb` -> `/abs/path.duckdb`; a PostgreSQL or Spark URL -> None."""
    if url.startswith("duckdb:///"):
        rest = url[len("duckdb:///") :]
        if not rest:
            raise UserError(f"MONITORING_DB_URL={url!r}: no file path after duckdb:///")
        return Path(rest).expanduser().resolve()
    if url.startswith(("postgresql://", "postgres://")):
        return None
    if url.startswith("spark://") and len(url) > len("spark://"):
        return None
    raise UserError(
        f"MONITORING_DB_URL={url!r}: expected duckdb:///<absolute path>, postgresql://user:password@host:port/database "
        "or spark://local[2] (spark://host:7077 for a cluster's master)"
    )


DEMO_MARKER = "demo.json"
CONFIG_NAMES = ("agentmon.yaml", "agents.yaml")


def _found(variable: str, home: Path, name: str) -> Path | None:
    """The file a variable names, else `name` in the home, else in the working directory."""
    named = os.environ.get(variable)
    if named:
        return Path(named).expanduser().resolve()
    for folder in (home, Path.cwd()):
        if (folder / name).is_file():
            return (folder / name).resolve()
    return None


def settings() -> Settings:
    home_env = os.environ.get("AGENTMON_HOME")
    home = Path(home_env).expanduser().resolve() if home_env else project_dir() / ".agentmon"
    url = os.environ.get("MONITORING_DB_URL") or f"duckdb:///{home / 'warehouse.duckdb'}"
    landing_env = os.environ.get("MONITORING_LANDING_DIR")
    landing = Path(landing_env).expanduser().resolve() if landing_env else home / "landing"
    # One lookup for every entry point (the CLI, make, the UI): the variable, then the home (where
    # `agentmon demo` copies the examples), then the working directory.
    config_file = _found("AGENTMON_CONFIG", home, "agentmon.yaml")
    agents_file = _found("AGENTMON_AGENTS_FILE", home, "agents.yaml")
    suites_env = os.environ.get("AGENTMON_SUITES_DIR")
    if suites_env:
        suites_dir = Path(suites_env).expanduser().resolve()
    else:
        # a demo home runs the repository's example suites; a user's own home runs its own
        suites_dir = project_dir() / "evals" / "suites" if (home / DEMO_MARKER).exists() else home / "suites"
    return Settings(
        home=home,
        warehouse_url=url,
        warehouse_path=warehouse_path_from_url(url),
        landing_dir=landing,
        retention_days=_int_env("MONITORING_RETENTION_DAYS", 0),  # 0 keeps everything
        log_level=os.environ.get("MONITORING_LOG_LEVEL", "INFO").upper(),
        archive_processed=_bool_env("MONITORING_ARCHIVE_PROCESSED"),
        config_file=config_file,
        agents_file=agents_file,
        suites_dir=suites_dir,
    )


def read_yaml(path: Path) -> Any:
    """The YAML document in `path` (an empty file is {}); a syntax error names the file and line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


KNOWN_CONFIG_KEYS = {"alerts", "budgets", "redaction", "suites"}
# settings that are environment variables, not sections of agentmon.yaml: named in the error
ENVIRONMENT_ONLY = {"retention": "MONITORING_RETENTION_DAYS", "landing": "MONITORING_LANDING_DIR",
                    "warehouse": "MONITORING_DB_URL"}  # fmt: skip


def load_config_file(s: Settings | None = None) -> dict[str, Any]:
    """The optional `agentmon.yaml`: a mapping of known sections. Each feature checks its own
    section where it reads it (alerting.rules.parse_alerts, analytics.budgets.parse_budgets,
    ingest.redaction.parse_redaction, evaluation.schedule.parse_schedule); `agentmon run` checks
    them all before it starts (cli.check_config)."""
    s = s or settings()
    path = s.config_file
    if path is None:
        return {}
    if not path.exists():
        raise UserError(f"AGENTMON_CONFIG: {path} does not exist")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level")
    unknown = sorted(set(data) - KNOWN_CONFIG_KEYS)
    if unknown:
        variable = ENVIRONMENT_ONLY.get(unknown[0])
        hint = f" ({unknown[0]} is set by the environment variable {variable})" if variable else ""
        raise UserError(
            f"{path}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(KNOWN_CONFIG_KEYS))}{hint}"
        )
    return data
