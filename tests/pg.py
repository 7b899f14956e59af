"""A PostgreSQL server of its own, for the tests and `make bench` (never for users' warehouses)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def throwaway_server(url: str | None = None) -> Iterator[str]:
    """`url` when given; else a PostgreSQL server of its own for tests and benchmarks:
    .ci/postgres.sh (Debian's PostgreSQL, installed if missing) on a free loopback port, in a data
    folder under /tmp (when we are root the server runs as the postgres user, who cannot enter
    private temporary folders), stopped and removed afterwards. Yields a superuser's URL."""
    if url:
        yield url
        return
    from agentmon_pipeline.config import project_dir

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="agentmon-pg."))
    started = subprocess.run(
        [str(project_dir() / ".ci" / "postgres.sh"), str(data)], capture_output=True, text=True, check=False,
        env={**os.environ, "AGENTMON_TEST_POSTGRES_PORT": str(port)},
    )  # fmt: skip
    if started.returncode != 0:
        raise RuntimeError(f"could not start PostgreSQL: {started.stderr[-2000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        pg_ctl = max(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        stop = [str(pg_ctl), "-D", str(data / "data"), "-m", "fast", "stop"]
        subprocess.run((["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) + stop,
                       capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
