"""Shared fixtures: a temporary AGENTMON_HOME per test, the dbt manifest built once per session."""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.storage import migrate

# real telemetry of other projects (licences beside the files): see tests/fixtures/corpus/README.md
CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"

# Importing the Dagster definitions sets up a home (its folders, the instance's dagster.yaml): while
# the test modules are collected that is a throwaway one, never the repository's .agentmon nor a
# user's own AGENTMON_HOME (the `_session_env` fixture then gives the tests theirs).
_IMPORT_HOME = tempfile.mkdtemp(prefix="agentmon-test-import-")
os.environ["AGENTMON_HOME"] = _IMPORT_HOME
atexit.register(shutil.rmtree, _IMPORT_HOME, True)

# `make test` runs the tests in parallel (pytest-xdist): each worker builds dbt in its own target
# folder, set before anything imports the Dagster definitions.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["AGENTMON_DBT_TARGET"] = f"target-{os.environ['PYTEST_XDIST_WORKER']}"
DEMO_END = datetime(2026, 11, 20, 0, tzinfo=UTC)
DEMO_DAYS = 23  # the shared demo warehouse: enough for the forecasts' backtest


def pytest_collection_modifyitems(config, items):
    """The slow tests (whole pipeline runs, marked `slow`) first: the longest jobs handed out
    first, the two workers finish at about the same time instead of one waiting on a late one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    _group_for_xdist(config, items)


def _group_for_xdist(config, items) -> None:
    """`--dist loadgroup` sends the tests of one `xdist_group` to one worker by a suffix on their
    node ids. pytest-xdist 3.8 writes it to `item._nodeid`, which pytest 9 no longer reads (the id
    is `item._id`), so every group was split over the workers (and the reports snapshot built
    twice). Until xdist follows, the suffix is written where pytest 9 keeps the id."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})  # fmt: skip
        if names and "@" not in item.nodeid.rsplit("]", 1)[-1]:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("session-home")
    mp.setenv("AGENTMON_HOME", str(home))
    mp.setenv("DO_NOT_TRACK", "1")
    mp.setenv("MONITORING_SETTLE_SECONDS", "0")
    mp.setenv("MONITORING_RETENTION_DAYS", "0")
    mp.delenv("MONITORING_DB_URL", raising=False)
    mp.delenv("MONITORING_LANDING_DIR", raising=False)
    mp.delenv("AGENTMON_CONFIG", raising=False)
    mp.delenv("AGENTMON_AGENTS_FILE", raising=False)
    # the tests are the example suites' users (with make demo): a user's own home has none
    mp.setenv("AGENTMON_SUITES_DIR", str(Path(__file__).resolve().parents[1] / "evals" / "suites"))
    from agentmon_pipeline.app.runner import prepare_dbt_manifest

    mp.setenv("MONITORING_DB_URL", f"duckdb:///{_worker_warehouse(tmp_path_factory)}")
    prepare_dbt_manifest()  # for the warehouse the `home` fixture gives every test
    mp.delenv("MONITORING_DB_URL")
    yield
    mp.undo()


def _worker_warehouse(tmp_path_factory) -> Path:
    """One warehouse path per test worker, reused (emptied) by every `home`: dbt's partial parse
    hashes the profile's connection, the warehouse's path included, so a new path per test would
    make every pipeline test reparse the project (about 4.5 s each)."""
    return tmp_path_factory.getbasetemp() / "worker-warehouse.duckdb"


@pytest.fixture
def home(tmp_path, tmp_path_factory, monkeypatch) -> Path:
    """A fresh AGENTMON_HOME with its landing folder, and an empty warehouse at this worker's
    warehouse path (MONITORING_DB_URL; tests run one at a time per worker)."""
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path / "home"))
    warehouse = _worker_warehouse(tmp_path_factory)
    for path in (warehouse, Path(f"{warehouse}.wal")):
        path.unlink(missing_ok=True)
    monkeypatch.setenv("MONITORING_DB_URL", f"duckdb:///{warehouse}")
    from agentmon_pipeline.home import ensure_home

    s = ensure_home()
    return s.home


@pytest.fixture
def con():
    """An in-memory, migrated warehouse for loader unit tests."""
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    migrate(connection)
    yield connection
    connection.close()


class Receiver:
    """A loopback HTTP server that records what is POSTed (Slack, webhooks, the SDK's exporter)."""

    def __init__(self):
        self.posts: list[dict] = []
        self.down: dict[str, int] = {}  # path -> answer 503 to this many posts (a channel that is down)
        self.server = HTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down.get(self.path, 0) > 0:
                    receiver.down[self.path] -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "json": json.loads(body)})  # fmt: skip
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> dict:
    """DEMO_DAYS of the demo (6 agents, seed 7, ending DEMO_END) run through the whole pipeline once
    for every test that only reads it (the reports, the analytics' planted findings), with the
    example config and one benchmark suite. Built by the first worker that asks, under a file lock;
    the others read its paths. Its environment is undone: the tests only read the files.
    Returns the warehouse path, the reports snapshot's path and metadata, and the WARN checks."""
    built = once_per_session(tmp_path_factory, "demo-warehouse.json", lambda path: path.write_text(
        json.dumps(_build_demo_warehouse(tmp_path_factory), default=str)))  # fmt: skip
    return json.loads(built.read_text())


def once_per_session(tmp_path_factory, name: str, build) -> Path:
    """`build(path)` once per test session, whichever worker asks first (under a file lock; the
    others wait for it), in this session's folder (the workers' basetemps are inside it; without
    xdist, the basetemp). Returns the path."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path, done = root / name, root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build(path)
            done.touch()
    return path


def _build_demo_warehouse(tmp_path_factory) -> dict:
    import dagster as dg

    from agentmon_pipeline.config import project_dir
    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.devtools.demo import generate_demo
    from agentmon_pipeline.home import ensure_home
    from agentmon_pipeline.outputs.reports import snapshot_path

    mp = pytest.MonkeyPatch()
    mp.setenv("AGENTMON_HOME", str(tmp_path_factory.mktemp("demo-home")))
    mp.delenv("MONITORING_DB_URL", raising=False)  # its own warehouse, in its home
    mp.setenv("AGENTMON_CONFIG", str(project_dir() / "examples" / "agentmon.yaml"))
    mp.setenv("AGENTMON_AGENTS_FILE", str(project_dir() / "examples" / "agents.yaml"))
    try:
        s = ensure_home()
        generate_demo(s.landing_dir, days=DEMO_DAYS, agents=6, seed=7, end=DEMO_END)
        other_suites = dg.AssetSelection.groups("evals") - dg.AssetSelection.assets(
            dg.AssetKey(["evals", "support_qa_results"]), dg.AssetKey(["analytics", "support_qa_regressions"]),
            dg.AssetKey(["evals", "runs"]), dg.AssetKey(["evals", "results"]))  # fmt: skip
        job = dg.define_asset_job("demo_test", selection=dg.AssetSelection.all()
                                  - dg.AssetSelection.groups("maintenance") - other_suites)  # fmt: skip
        resolved = dg.Definitions(assets=defs.assets, jobs=[job], resources=defs.resources).resolve_job_def(
            "demo_test"
        )
        result = resolved.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        assert result.success
        [materialization] = [m for m in result.asset_materializations_for_node("reports_snapshot")]
        checks = {e.event_specific_data.check_name: [e.event_specific_data.passed, str(e.event_specific_data.severity)]
                  for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}  # fmt: skip
        return {"warehouse": str(s.warehouse_path), "snapshot": str(snapshot_path(s)), "checks": checks,
                "snapshot_metadata": {k: v.value for k, v in materialization.metadata.items()}}  # fmt: skip
    finally:
        mp.undo()


def firing_alerts(s=None) -> list[tuple]:
    """The alerts firing in the warehouse of `s` (default: the current settings), in order."""
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.storage import connect

    with connect(s or settings(), read_only=True) as con:
        return con.execute(
            "select alert_id, rule, agent_id, metric from alerts.alerts where state = 'firing' order by all"
        ).fetchall()


@pytest.fixture(scope="session")
def engine_reference(tmp_path_factory):
    """The 9-day demo run once on DuckDB, for the tests that run it on PostgreSQL and on Spark and
    compare (both in the xdist group "engines", so one worker runs it once)."""
    from tests.engines import Reference

    return Reference(tmp_path_factory.mktemp("engine-reference"))


# the demo through ingest and the marts -----------------------------------------------------------


def materialize_all() -> dg.ExecuteInProcessResult:  # noqa: F821 -- dagster is imported when it runs
    """Every asset of the code location, as `agentmon run` and the UI's job would."""
    import dagster as dg

    from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
    from agentmon_pipeline.defs.registry.assets import agent_registry
    from agentmon_pipeline.defs.resources import dbt_resource
    from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

    return dg.materialize(
        [raw_telemetry, raw_model_prices, agent_registry, agentmon_dbt_models],
        resources={"dbt": dbt_resource},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _demo_landing(landing: Path) -> None:
    from agentmon_pipeline.devtools.demo import generate_demo

    generate_demo(landing, days=3, agents=6, seed=11, end=DEMO_END)


@pytest.fixture
def demo_home(home):
    from agentmon_pipeline.config import settings

    _demo_landing(settings().landing_dir)
    return home


def _build_demo_home(root: Path) -> None:
    from agentmon_pipeline.home import ensure_home

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTMON_HOME", str(root))
        mp.delenv("MONITORING_DB_URL", raising=False)  # its own warehouse, in its home
        _demo_landing(ensure_home().landing_dir)
        assert materialize_all().success


@pytest.fixture
def built_demo_home(home, tmp_path_factory):
    """`demo_home` after its first run: tests that start from there share one build (made once per
    test session, under a file lock), copied into their own home with the ledger's paths moved
    along (files keep their mtimes), as if the run had happened there."""
    from agentmon_pipeline.config import settings

    template = once_per_session(tmp_path_factory, "built-demo-home", _build_demo_home)
    s = settings()
    for source in (template / "landing").iterdir():
        shutil.copy2(source, s.landing_dir / source.name)
    shutil.copy2(template / "warehouse.duckdb", s.warehouse_path)
    con = duckdb.connect(str(s.warehouse_path))
    for table in ("raw.ingested_files", "raw.quarantine"):
        con.execute(f"update {table} set file_path = replace(file_path, ?, ?)",
                    [str((template / "landing").resolve()), str(s.landing_dir.resolve())])  # fmt: skip
    con.close()
    return home
