"""Shared fixtures: a temporary AGENTMON_HOME per test, the dbt manifest built once per session."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.warehouse import migrate

# real telemetry of other projects (licences beside the files): see tests/fixtures/corpus/README.md
CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"

# `make test` runs the tests in parallel (pytest-xdist): each worker builds dbt in its own target
# folder, set before anything imports the Dagster definitions.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["AGENTMON_DBT_TARGET"] = f"target-{os.environ['PYTEST_XDIST_WORKER']}"
DEMO_END = datetime(2026, 11, 20, 0, tzinfo=UTC)


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
    from agentmon_pipeline.runner import prepare_dbt_manifest

    prepare_dbt_manifest()
    yield
    mp.undo()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh AGENTMON_HOME with its landing folder."""
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path / "home"))
    from agentmon_pipeline.config import ensure_home

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
