"""`make bench`: ingestion and pipeline speed as ratios against references run on the same machine.

1. Ingest a file of 1M native spans with agentmon's loader, and time DuckDB's own `read_json` of
   the same file into a table of the same warehouse kind: print both and the ratio (goal <= 1.5),
   and the loader's peak memory (goal <= 2 GB).
2. Drop the file into a fresh landing folder and time `agentmon run` (drop to marts through
   Dagster; goal <= 60 s on 2 cores); then drop 1% more spans and time the incremental run (goal
   <= 10% of the full run); then a run with nothing new (answered from the ledger, goal <= 3 s)
   and the same with --force (what a run costs when it has nothing to do); then `agentmon backfill`
   of 3 of the file's 30 days.
3. The telemetry SDK: the median cost of a recorded call (`record_llm_call`) against a no-op
   function with the same signature, in the same process, while the collector's background thread
   writes the records into a landing folder (goal: at most 5 us more than the no-op).

4. The UI path: with `dagster dev` running over a demo home, a small file dropped into the landing
   folder, timed until its LLM calls are in `marts.fct_llm_calls` (goal <= 60 s on 2 cores), with
   the steps in the run's process (the default) and in a process per step.

`python -m agentmon_pipeline.devtools.bench sdk` runs only the third (seconds, not minutes), `... bench ui`
only the fourth (minutes), `... bench ingest` only the loader against read_json (native and OTLP),
`... bench backfill` only a run of the native file and a backfill of 3 of its 30 days,
`... bench ui-backfill` only a backfill of 3 days launched as the UI launches it (GraphQL).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from multiprocessing import get_context
from pathlib import Path
from queue import Empty

import duckdb

from agentmon_pipeline.config import project_dir

SPANS = int(os.environ.get("AGENTMON_BENCH_SPANS", "1000000"))
ROWS: list[tuple[str, str, str]] = []  # (what, measured, goal): the table printed at the end


def row(what: str, measured: str, goal: str = "") -> None:
    ROWS.append((what, measured, goal))


def print_table() -> None:
    """Every figure of this bench in one markdown table, each beside its goal (docs/performance.md's)."""
    if not ROWS:
        return
    print("\n| what | measured | goal |\n|---|---|---|")
    for what, measured, goal in ROWS:
        print(f"| {what} | {measured} | {goal} |")


def write_spans(path: Path, n_spans: int, offset: int = 0) -> None:
    """n_spans native spans, 5 per trace (agent run > 3 LLM calls + 1 tool call), written by DuckDB."""
    con = duckdb.connect()
    con.execute(
        f"""
        copy (
            select
                'trace-' || (({offset} + i) // 5) as trace_id,
                'span-' || ({offset} + i) as span_id,
                case when i % 5 = 0 then null else 'span-' || ({offset} + i - i % 5) end as parent_span_id,
                case i % 5 when 0 then 'invoke_agent' when 4 then 'tool search' else 'chat' end as name,
                case i % 5 when 0 then 'agent' when 4 then 'tool' else 'llm' end as kind,
                strftime(timestamptz '2026-11-01 00:00:00+00' + to_seconds(({offset} + i) // 5 % 2592000), '%Y-%m-%dT%H:%M:%S.%gZ') as start_time,
                strftime(timestamptz '2026-11-01 00:00:00+00' + to_seconds(({offset} + i) // 5 % 2592000) + to_milliseconds(100 + i % 900), '%Y-%m-%dT%H:%M:%S.%gZ') as end_time,
                case when i % 97 = 0 then 'error' else 'ok' end as status,
                'agent-' || (i // 5 % 7) as agent_id,
                '1.' || (i // 5 % 3) as agent_version,
                case when i % 5 in (1, 2, 3) then (['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5-20250929', 'gemini-2.0-flash'])[1 + i % 4] end as model,
                case when i % 5 in (1, 2, 3) then 500 + i % 1500 end as input_tokens,
                case when i % 5 in (1, 2, 3) then 50 + i % 400 end as output_tokens,
                case when i % 5 = 4 then 'search' end as tool_name,
                {{'session': 's' || (i % 1000)}} as attributes
            from range({n_spans}) t(i)
        ) to '{path}' (format json)
        """
    )
    con.close()


def write_otlp(path: Path, n_spans: int, per_request: int = 1000) -> None:
    """n_spans as OTLP JSON, one ExportTraceServiceRequest of `per_request` spans per line, built
    by DuckDB: the same traces as write_spans, with GenAI attributes."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(
        f"""
        copy (
            with spans as (
                select i, json_object(
                    'traceId', lpad(to_hex(i // 5), 32, '0'),
                    'spanId', lpad(to_hex(i), 16, '0'),
                    'parentSpanId', case when i % 5 = 0 then '' else lpad(to_hex(i - i % 5), 16, '0') end,
                    'name', case i % 5 when 0 then 'invoke_agent' when 4 then 'execute_tool search' else 'chat' end,
                    'kind', 1,
                    'startTimeUnixNano', (1761955200000000000 + (i // 5) * 1000000000)::varchar,
                    'endTimeUnixNano', (1761955200000000000 + (i // 5) * 1000000000 + (100 + i % 900) * 1000000)::varchar,
                    'attributes', case i % 5
                        when 0 then [json_object('key', 'gen_ai.operation.name', 'value', json_object('stringValue', 'invoke_agent')),
                                     json_object('key', 'gen_ai.agent.name', 'value', json_object('stringValue', 'agent-' || (i // 5 % 7)))]
                        when 4 then [json_object('key', 'gen_ai.operation.name', 'value', json_object('stringValue', 'execute_tool')),
                                     json_object('key', 'gen_ai.tool.name', 'value', json_object('stringValue', 'search'))]
                        else [json_object('key', 'gen_ai.operation.name', 'value', json_object('stringValue', 'chat')),
                              json_object('key', 'gen_ai.request.model', 'value', json_object('stringValue', 'gpt-4o-mini')),
                              json_object('key', 'gen_ai.usage.input_tokens', 'value', json_object('intValue', (500 + i % 1500)::varchar)),
                              json_object('key', 'gen_ai.usage.output_tokens', 'value', json_object('intValue', (50 + i % 400)::varchar))]
                    end,
                    'status', json_object('code', case when i % 97 = 0 then 2 else 0 end)
                ) as span
                from range({n_spans}) t(i)
            )
            select json_object('resourceSpans', [json_object(
                'resource', json_object('attributes', [json_object('key', 'service.name', 'value', json_object('stringValue', 'bench'))]),
                'scopeSpans', [json_object('scope', json_object('name', 'bench'), 'spans', list(span order by i))]
            )])::varchar as line
            from spans group by i // {per_request} order by i // {per_request}
        ) to '{path}' (format csv, header false, quote '', escape '', delimiter '\x01')
        """
    )
    con.close()


def _write_otlp_child(path: Path, n_spans: int, queue) -> None:
    write_otlp(path, n_spans)
    queue.put(None)


def _peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM). Not getrusage's ru_maxrss:
    Linux carries that over a fork and exec, so a child spawned by a parent that once held 11 GB
    (DuckDB writing the OTLP input) reported 11 GB whatever it used itself."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reference(path: Path, db: Path, queue) -> None:
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("set enable_progress_bar = false")
    start, cpu = time.perf_counter(), _cpu_s()
    con.execute(f"create table spans as select * from read_json('{path}', format = 'newline_delimited')")
    con.close()
    queue.put((time.perf_counter() - start, _cpu_s() - cpu, _peak_rss_mb()))


def _ours(path: Path, db: Path, queue) -> None:
    _ingest(path, db, queue, expected=SPANS)


def _ours_any(path: Path, db: Path, queue) -> None:
    _ingest(path, db, queue, expected=None)


def _ingest(path: Path, db: Path, queue, expected: int | None) -> None:
    from agentmon_pipeline.ingest.loader import ingest_file
    from agentmon_pipeline.storage import migrate

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    migrate(con)
    start, cpu = time.perf_counter(), _cpu_s()
    result = ingest_file(con, path, db.parent / "tmp")
    con.close()
    assert result.quarantined == 0 and result.loaded == (expected or result.loaded), result
    queue.put((time.perf_counter() - start, _cpu_s() - cpu, _peak_rss_mb()))


def _known_fields_read(path: Path, db: Path, queue) -> None:
    """DuckDB's reader of the file into the native format's known fields alone (text, or JSON for
    objects), into a table: no check, no unknown key kept, nothing redacted. What any loader that
    types those fields reads, at least."""
    from agentmon_pipeline.ingest.native import field_types

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("set enable_progress_bar = false")
    columns = ", ".join(f"'{field}': '{duck}'" for field, duck in field_types().items())
    start = time.perf_counter()
    con.execute(
        f"create table spans as select * from read_json('{path}', format = 'newline_delimited', columns = {{{columns}}})"
    )
    con.close()
    queue.put(time.perf_counter() - start)


def _phases(path: Path, db: Path, queue) -> None:
    """Where ingest_file's time goes on a native file, each step of the loader timed on its own (wall
    seconds): the file's hash (the ledger's identity of a file), parse (read, type and check every
    record, keep unknown keys: temp table `typed`), plan (counts, the quarantine's rows) and write
    (raw.spans' rows computed, redacted, capped and written, with the delete of earlier versions)."""
    from agentmon_pipeline.ingest import detect
    from agentmon_pipeline.ingest.parse import parse
    from agentmon_pipeline.ingest.plan import plan_writes
    from agentmon_pipeline.ingest.redaction import DEFAULT
    from agentmon_pipeline.storage import migrate
    from agentmon_pipeline.storage.engines import write_raw

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    migrate(con)
    times, start = {}, time.perf_counter()
    sha = detect.sha256_of(path)
    times["hash"], start = time.perf_counter() - start, time.perf_counter()
    head = detect.read_head(path, False)
    fast = parse(con, path, False, head, detect.detect_format(head))
    times["parse"], start = time.perf_counter() - start, time.perf_counter()
    plan = plan_writes(con, "native", fast, 1, str(path), sha, DEFAULT)
    times["plan"], start = time.perf_counter() - start, time.perf_counter()
    write_raw(con, con, plan.replaces, plan.appends, lambda _: None)
    times["write"] = time.perf_counter() - start
    assert con.execute("select count(*) from raw.spans").fetchone()[0] == SPANS
    con.close()
    queue.put(times)


def _ingest_spark(path: Path, home: Path, queue) -> None:
    """The same ingest_file into a Spark warehouse in local mode: Spark's reader splits the file,
    its executors parse it (ingest.spark_reader). Timed after the session has started and the
    warehouse is migrated; wall time only (the work is in the JVM and its Python workers)."""
    os.environ.update(AGENTMON_HOME=str(home), MONITORING_DB_URL="spark://local[2]")
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.ingest.loader import ingest_file
    from agentmon_pipeline.storage.warehouse import connect

    with connect(settings()) as con:
        start = time.perf_counter()
        result = ingest_file(con, path, home / "tmp")
        elapsed = time.perf_counter() - start
    assert result.quarantined == 0 and result.loaded == SPANS, result
    queue.put((elapsed, None, None))


def _ingest_spark_small(home: Path, spark_reads: bool, queue) -> None:
    """Seconds per small file (50 spans) ingested into a Spark warehouse: parsed in this process
    (as a file smaller than Spark's block is) or, as if it were larger, read by Spark itself."""
    os.environ.update(
        AGENTMON_HOME=str(home), MONITORING_DB_URL="spark://local[2]", MONITORING_SETTLE_SECONDS="0"
    )
    from agentmon_pipeline.ingest import spark_reader

    spark_reader.reads_itself = lambda con, size: spark_reads
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.ingest.batch import ingest_landing
    from agentmon_pipeline.storage.warehouse import connect

    landing = home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for n in range(13):
        write_spans(landing / f"small-{n:02d}.jsonl", 50, offset=n * 50)
    s = settings()
    with connect(s) as con:
        ingest_landing(con, s, only=[str(landing / "small-00.jsonl")])  # the first file warms the session
        start = time.perf_counter()
        files = ingest_landing(con, s).files
        elapsed = time.perf_counter() - start
    assert len(files) == 12 and all(f.status == "loaded" for f in files), files
    queue.put((elapsed / len(files), None, None))


def _ingest_postgres(path: Path, url: str, queue) -> None:
    """The same ingest_file into a PostgreSQL warehouse: DuckDB parses in memory, COPY loads."""
    from agentmon_pipeline.ingest.loader import ingest_file
    from agentmon_pipeline.storage import postgres

    con = postgres.PgConnection(postgres.connect(url))
    postgres.migrate(con.pg)
    start = time.perf_counter()
    result = ingest_file(con, path, path.parent / "tmp")
    con.close()
    assert result.quarantined == 0 and result.loaded == SPANS, result
    queue.put((time.perf_counter() - start, 0.0, _peak_rss_mb()))


def _copy_postgres(path: Path, url: str, queue) -> None:
    """PostgreSQL's own bulk load of the same bytes: COPY of each line into a one-column table."""
    from agentmon_pipeline.storage import postgres

    pg = postgres.connect(url)
    pg.execute("create table bench_lines (line text)")
    start = time.perf_counter()
    with (
        pg.cursor() as cur,
        cur.copy("copy bench_lines from stdin (format text)") as copy,
        open(path, "rb") as f,
    ):
        while chunk := f.read(1 << 20):
            copy.write(chunk.replace(b"\\", b"\\\\"))  # text format: a backslash escapes
    pg.close()
    queue.put((time.perf_counter() - start, 0.0, _peak_rss_mb()))


def bench_postgres(data: Path, root: Path) -> None:
    """Ingest into PostgreSQL against ingest into DuckDB (same file, same machine), and against
    PostgreSQL's own COPY of the bytes. The server: AGENTMON_BENCH_POSTGRES_URL, else a throwaway
    one started with .ci/postgres.sh (Debian's PostgreSQL) and stopped after."""
    import psycopg

    from tests.pg import throwaway_server  # `make bench` runs in the repository, beside its tests

    with throwaway_server(os.environ.get("AGENTMON_BENCH_POSTGRES_URL")) as url:
        times = {}
        for name, target in (("ingest", _ingest_postgres), ("copy", _copy_postgres)):
            database = f"agentmon_bench_{name}"
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"drop database if exists {database}")
                admin.execute(f"create database {database}")
            times[name] = _in_child(target, data, url.rsplit("/", 1)[0] + "/" + database)
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"drop database {database}")
        duck = _in_child(_ours, data, root / "ours.duckdb")
        print(f"postgresql COPY of the lines      : {times['copy'][0]:6.2f} s wall")
        print(f"agentmon ingest_file -> duckdb    : {duck[0]:6.2f} s wall")
        print(
            f"agentmon ingest_file -> postgresql: {times['ingest'][0]:6.2f} s wall  peak {times['ingest'][2]:5.0f} MB"
        )
        print(f"ratio to duckdb                   : {times['ingest'][0] / duck[0]:6.2f} wall")
        print(f"ratio to postgresql's own COPY    : {times['ingest'][0] / times['copy'][0]:6.2f} wall")
        row(f"ingest {SPANS:,} native spans into PostgreSQL vs PostgreSQL's own `COPY` of the lines (`bench postgres`)",
            f"{times['ingest'][0] / times['copy'][0]:.2f}× ({times['ingest'][0]:.1f} s vs {times['copy'][0]:.1f} s), "
            f"{times['ingest'][0] / duck[0]:.2f}× the DuckDB ingest, peak {times['ingest'][2] / 1024:.2f} GB", "≤ 1.5×")  # fmt: skip


def _in_child(target, *args):
    ctx = get_context("spawn")  # a fresh process each: peak memory is the measured step's own
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            out = queue.get(timeout=1)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} died (exit code {proc.exitcode})") from None
    proc.join()
    return out


def _agentmon_run(home: Path, *args: str, command: str = "run", url: str | None = None) -> float:
    env = {
        **os.environ,
        "AGENTMON_HOME": str(home),
        "MONITORING_SETTLE_SECONDS": "0",
        "MONITORING_RETENTION_DAYS": "0",
    }
    env.pop("MONITORING_DB_URL", None)
    env.pop("MONITORING_LANDING_DIR", None)
    if url:
        env["MONITORING_DB_URL"] = url
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "agentmon_pipeline.app.cli", command, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"agentmon {command} failed with exit code {proc.returncode}")
    return elapsed


# The UI path: a real `dagster dev` (webserver, daemon, code server), as `make ui` starts it --------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")


class DagsterDev:
    """`make ui` in a subprocess: what a user starts, on the test's home."""

    def __init__(self, home: Path, log: Path):
        self.port = _free_port()
        env = {
            **os.environ,
            "AGENTMON_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "DO_NOT_TRACK": "1",
        }
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=project_dir(), env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {self.process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Ctrl-C, as a user stops `make ui`; then harder, and never a process left behind."""
        for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break  # the whole group is gone
            try:
                self.process.wait(timeout=grace)
                time.sleep(0.5)  # its children leave after it
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


def bench_ui(drops: int = 2) -> None:
    """A small file dropped into the landing folder of `make demo`'s home with `dagster dev` running:
    seconds until its LLM calls are in marts.fct_llm_calls (the sensor's interval and the settle
    time included), with the steps in process (the default) and in a process each."""
    from datetime import UTC, datetime

    from agentmon_pipeline.config import settings
    from agentmon_pipeline.defs.headless import last_run_seconds
    from agentmon_pipeline.devtools.demo import generate_demo
    from agentmon_pipeline.errors import WarehouseBusy
    from agentmon_pipeline.home import mark_demo_home
    from agentmon_pipeline.storage import connect

    with tempfile.TemporaryDirectory(prefix="agentmon-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        os.environ["AGENTMON_HOME"] = str(home)
        s = settings()
        generate_demo(
            s.landing_dir, days=30, agents=6, seed=7, end=datetime.now(UTC)
        )  # what `make demo` writes
        mark_demo_home(s)
        _agentmon_run(home)
        print(f"UI path: a demo home of {sum(1 for _ in s.landing_dir.iterdir())} files, settle time "
              f"{os.environ.get('MONITORING_SETTLE_SECONDS', '10')} s, sensor every 10 s")  # fmt: skip

        def in_marts(trace: str) -> bool:
            try:
                with connect(s, read_only=True, timeout=0.2) as con:
                    found = con.execute(
                        "select count(*) from marts.fct_llm_calls where trace_id = ?", [trace]
                    )
                    return found.fetchone()[0] > 0
            except WarehouseBusy:
                return False

        for name in ("in_process", "multiprocess"):
            os.environ["AGENTMON_EXECUTOR"] = name
            ui = DagsterDev(home, Path(tmp) / f"dagster-{name}.log")
            times, runs = [], []
            try:
                wait_for(ui.up, 180, "the webserver")
                for drop in range(drops):
                    trace = f"bench-{name}-{drop}-{time.time_ns()}"
                    lines = [{"trace_id": trace, "span_id": "a", "name": "invoke_agent bench", "kind": "agent",
                              "agent_id": "bench-bot", "start_time": datetime.now(UTC).isoformat(), "duration_ms": 900},
                             {"trace_id": trace, "span_id": "b", "parent_span_id": "a", "name": "chat", "kind": "llm",
                              "model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 20,
                              "start_time": datetime.now(UTC).isoformat(), "duration_ms": 800}]  # fmt: skip
                    started = time.monotonic()
                    (s.landing_dir / f"{trace}.jsonl").write_text(
                        "".join(json.dumps(x) + "\n" for x in lines)
                    )
                    wait_for(
                        lambda trace=trace: in_marts(trace), 600, "the dropped file in the marts", every=0.5
                    )
                    times.append(time.monotonic() - started)
                    runs.append(
                        wait_for(lambda: last_run_seconds(s.dagster_home), 600, "the run to end", every=1)
                    )
            finally:
                ui.stop()
                os.environ.pop("AGENTMON_EXECUTOR", None)
            print(f"UI, drop to fct_llm_calls, {name:<12}: " + ", ".join(f"{t:.0f} s" for t in times)
                  + f"  (median {sorted(times)[len(times) // 2]:.0f} s; goal <= 60 s); the whole run (ingest, marts, "
                  f"analytics, alerts, reports): median {sorted(runs)[len(runs) // 2]:.0f} s")  # fmt: skip
            row(f"a small file dropped with `make ui` running on `make demo`'s home, to `marts.fct_llm_calls`, steps "
                f"{'in the run process' if name == 'in_process' else 'in a process each'} (`bench ui`)",
                f"{sorted(times)[len(times) // 2]:.0f} s (the whole run {sorted(runs)[len(runs) // 2]:.0f} s)",
                "≤ 60 s")  # fmt: skip


DAY_MARTS = ("fct_agent_runs", "fct_llm_calls", "fct_tool_calls", "fct_metrics", "fct_events",
             "agg_agent_daily", "agg_agent_hourly")  # fmt: skip


def day_marts(warehouse: Path) -> dict[str, list]:
    """The marts by day, without the load ids (the order files were loaded in)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {table: con.execute(f"select columns(lambda c: c not like '%load_id') from marts.{table} order by all")
                .fetchall() for table in DAY_MARTS}  # fmt: skip
    finally:
        con.close()


def same_marts(left: dict[str, list], right: dict[str, list]) -> bool:
    """The same rows; a sum of the same doubles added in another order may differ in its last bits."""

    def same(a, b) -> bool:
        return math.isclose(a, b, rel_tol=1e-12) if isinstance(a, float) and isinstance(b, float) else a == b

    return all(len(left[t]) == len(right[t]) and all(all(map(same, x, y)) for x, y in zip(left[t], right[t]))
               for t in DAY_MARTS)  # fmt: skip


def bench_ui_backfill() -> None:
    """A backfill as the UI launches it (GraphQL launchPartitionBackfill, run by `dagster dev`'s
    daemon): 3 past days of raw/* and the dbt marts, over a 5-day demo home that already has them.
    Times it and checks that the marts are those of the full run."""
    from datetime import UTC, datetime, timedelta

    from agentmon_pipeline.config import settings
    from agentmon_pipeline.devtools.demo import generate_demo
    from agentmon_pipeline.home import mark_demo_home

    with tempfile.TemporaryDirectory(prefix="agentmon-bench-backfill-") as tmp:
        home = Path(tmp) / "home"
        os.environ["AGENTMON_HOME"] = str(home)
        s = settings()
        generate_demo(s.landing_dir, days=5, agents=3, seed=7, end=datetime.now(UTC))
        mark_demo_home(s)
        _agentmon_run(home)
        before = day_marts(s.warehouse_path)
        ui = DagsterDev(home, Path(tmp) / "dagster.log")

        def graphql(query: str, variables: dict | None = None) -> dict:
            request = urllib.request.Request(
                f"http://127.0.0.1:{ui.port}/graphql", headers={"Content-Type": "application/json"},
                data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read())["data"]

        try:
            wait_for(ui.up, 180, "the webserver")
            today = datetime.now(UTC).date()
            first, last = (today - timedelta(days=4)).isoformat(), (today - timedelta(days=2)).isoformat()
            nodes = graphql("{ assetNodes { assetKey { path } groupName isPartitioned } }")["assetNodes"]
            params = {"fromFailure": False, "tags": [], "partitionsByAssets": [
                {"assetKey": {"path": n["assetKey"]["path"]},
                 "partitions": {"range": {"start": first, "end": last}} if n["isPartitioned"] else None}
                for n in nodes if n["isPartitioned"] or n["groupName"] == "transform"]}  # fmt: skip
            started = time.monotonic()
            launched = graphql("mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) "
                               "{ __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
                               {"p": params})["launchPartitionBackfill"]  # fmt: skip
            if "backfillId" not in launched:
                raise AssertionError(f"the backfill was not launched: {launched}")

            def finished() -> str | None:
                status = graphql("query($id: String!) { partitionBackfillOrError(backfillId: $id) "
                                 "{ ... on PartitionBackfill { status } } }",
                                 {"id": launched["backfillId"]})["partitionBackfillOrError"]["status"]  # fmt: skip
                return status if status.startswith(("COMPLETED", "FAILED", "CANCELED")) else None

            status = wait_for(finished, 900, "the backfill", every=2)
            seconds = time.monotonic() - started
        finally:
            ui.stop()
        same = same_marts(day_marts(s.warehouse_path), before)
        print(
            f"UI backfill of 3 days (raw/* and the marts): {status} in {seconds:.0f} s; marts as before: {same}"
        )
        row("a backfill of 3 days of raw/* and the marts launched as the UI launches it, on a 5-day demo home "
            "(`bench ui-backfill`)", f"{seconds:.0f} s, {status.lower()}, marts {'equal' if same else 'DIFFERENT'}")  # fmt: skip
        if status != "COMPLETED_SUCCESS" or not same:
            raise SystemExit("the UI backfill did not give the marts of the full run")


def _noop_call(model=None, input_tokens=None, output_tokens=None, duration_ms=0.0, success=True, **fields):
    return None


def bench_sdk(chunks: int = 400, per_chunk: int = 500) -> dict:
    """Chunks of recorded and no-op calls, interleaved so both see the same machine; the
    per-call time of each chunk, and the medians."""
    import statistics

    from agentmon_sdk import TelemetryCollector

    with tempfile.TemporaryDirectory(prefix="agentmon-sdk-bench-") as tmp:
        landing = Path(tmp) / "landing"
        # a burst far above any agent's rate: the queue is sized so that nothing is dropped
        collector = TelemetryCollector(landing_dir=landing, flush_interval_s=0.2, max_queue=1_000_000).start()
        record, noop = collector.record_llm_call, _noop_call
        timings: dict[str, list[float]] = {"noop": [], "recorded": [], "span": []}
        for _ in range(chunks):
            for name, fn in (("noop", noop), ("recorded", record)):
                start = time.perf_counter_ns()
                for _ in range(per_chunk):
                    fn("gpt-4o", input_tokens=812, output_tokens=96, duration_ms=640.0, provider="openai")
                timings[name].append((time.perf_counter_ns() - start) / per_chunk)
        for _ in range(chunks // 4):
            start = time.perf_counter_ns()
            for _ in range(per_chunk // 5):
                with collector.trace("run", agent_id="bench"):
                    pass
            timings["span"].append((time.perf_counter_ns() - start) / (per_chunk // 5))
        collector.stop()
        lines = sum(f.read_bytes().count(b"\n") for f in landing.glob("*.jsonl"))
        stats = collector.stats
    medians = {k: statistics.median(v) for k, v in timings.items()}
    return {**medians, "overhead": medians["recorded"] - medians["noop"], "lines": lines,
            "calls": chunks * per_chunk, "dropped": stats["dropped"]}  # fmt: skip


def print_sdk_bench() -> None:
    r = bench_sdk()
    print(f"telemetry SDK, {r['calls']:,} record_llm_call into a landing folder (background flush):")
    print(f"  no-op call with the same signature : {r['noop'] / 1000:6.2f} us median")
    print(f"  recorded call                      : {r['recorded'] / 1000:6.2f} us median")
    print(f"  overhead                           : {r['overhead'] / 1000:6.2f} us   (goal <= 5 us)")
    print(f"  trace() span, enter and exit       : {r['span'] / 1000:6.2f} us median")
    print(f"  records written {r['lines']:,}, dropped {r['dropped']}")
    row(
        "telemetry SDK: `record_llm_call` vs a no-op call with the same signature, files written in the background",
        f"+{r['overhead'] / 1000:.1f} µs ({r['recorded'] / 1000:.1f} µs vs {r['noop'] / 1000:.2f} µs, median)",
        "≤ 5 µs",
    )
    row("telemetry SDK: a `trace()` span, enter and exit", f"{r['span'] / 1000:.1f} µs (median)")


def ingest_setting() -> str:
    from agentmon_pipeline.ingest.limits import ingest_memory_setting

    return ingest_memory_setting()


def bench_ingest(root: Path, data: Path) -> None:
    """1M native spans and 1M spans as OTLP JSON: agentmon's loader against DuckDB's own read_json
    of the same file, each in a fresh process (peak memory is the step's own)."""
    write_spans(data, SPANS)
    size_mb = data.stat().st_size / 1e6
    print(f"input: {SPANS:,} native spans, {size_mb:.0f} MB")
    # Alternate the two, three times each, and keep each one's best: this machine's neighbours
    # make single timings noisy. CPU seconds (both threads) are steadier than wall time.
    refs, ours = [], []
    for _ in range(3):
        refs.append(_in_child(_reference, data, root / "ref.duckdb"))
        ours.append(_in_child(_ours, data, root / "ours.duckdb"))
    wall, cpu, peak = _compare(refs, ours)
    row(f"ingest {SPANS:,} native spans ({size_mb:.0f} MB) vs DuckDB's `read_json` of the same file into a table",
        f"{wall:.2f}× wall, {cpu:.2f}× CPU (best of three)", "≤ 1.5×")  # fmt: skip
    row(
        f"peak memory of that ingest (MONITORING_INGEST_MEMORY={ingest_setting()})",
        f"{peak / 1024:.2f} GB",
        "≤ 2 GB",
    )
    phases = _in_child(_phases, data, root / "ours.duckdb")
    known = _in_child(_known_fields_read, data, root / "ref.duckdb")
    print("where the time goes   : " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
          + f"; the known fields alone read into a table {known:.2f} s")  # fmt: skip
    row("where that ingest's time goes, each step of the loader timed alone",
        ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()) + f" (DuckDB's `read_json` into a table: "
        f"{min(r[0] for r in refs):.1f} s; of the known fields alone, no checks: {known:.1f} s)")  # fmt: skip

    otlp_data = root / "otlp.jsonl"
    _in_child(_write_otlp_child, otlp_data, SPANS)  # its DuckDB holds about 11 GB: not in this process
    otlp_mb = otlp_data.stat().st_size / 1e6
    print(f"input: {SPANS:,} spans as OTLP JSON, {otlp_mb:.0f} MB")
    refs = [_in_child(_reference, otlp_data, root / "ref.duckdb")]  # once: each takes a minute
    ours = [_in_child(_ours_any, otlp_data, root / "ours.duckdb")]
    wall, cpu, peak = _compare(refs, ours)
    row(f"ingest {SPANS:,} spans as OTLP JSON ({otlp_mb:.0f} MB) vs DuckDB's `read_json` of it",
        f"{wall:.2f}× wall, {cpu:.2f}× CPU ({ours[0][0]:.0f} s)", "≤ 2×")  # fmt: skip
    row(
        f"peak memory of that ingest (MONITORING_INGEST_MEMORY={ingest_setting()})",
        f"{peak / 1024:.2f} GB",
        "≤ 2 GB",
    )
    otlp_data.unlink()


def _compare(refs: list, ours: list) -> tuple[float, float, float]:
    """Each side's best wall and CPU time, printed; returns the ratios and our peak memory (MB)."""
    ref_s, ref_cpu = min(r[0] for r in refs), min(r[1] for r in refs)
    ours_s, ours_cpu = min(o[0] for o in ours), min(o[1] for o in ours)
    ref_mb, ours_mb = max(r[2] for r in refs), max(o[2] for o in ours)
    print(f"duckdb read_json -> table : {ref_s:6.2f} s wall {ref_cpu:6.2f} s cpu  peak {ref_mb:5.0f} MB")
    print(f"agentmon ingest_file      : {ours_s:6.2f} s wall {ours_cpu:6.2f} s cpu  peak {ours_mb:5.0f} MB")
    print(f"ratio                     : {ours_s / ref_s:6.2f} wall {ours_cpu / ref_cpu:6.2f} cpu")
    return ours_s / ref_s, ours_cpu / ref_cpu, ours_mb


def main() -> None:
    if sys.argv[1:] == ["sdk"]:
        print_sdk_bench()
        return
    if sys.argv[1:] == ["ui"]:
        bench_ui()
        return
    if sys.argv[1:] == ["ingest"]:
        with tempfile.TemporaryDirectory(prefix="agentmon-bench-") as tmp:
            bench_ingest(Path(tmp), Path(tmp) / "spans.jsonl")
        return
    if sys.argv[1:] == ["ui-backfill"]:
        bench_ui_backfill()
        return
    if sys.argv[1:] == ["backfill"]:
        with tempfile.TemporaryDirectory(prefix="agentmon-bench-") as tmp:
            home = Path(tmp) / "home"
            (home / "landing").mkdir(parents=True)
            write_spans(home / "landing" / "spans.jsonl", SPANS)
            bench_backfill(home, _agentmon_run(home))
        return
    if sys.argv[1:] == ["spark"]:
        with tempfile.TemporaryDirectory(prefix="agentmon-bench-") as tmp:
            data = Path(tmp) / "spans.jsonl"
            write_spans(data, SPANS)
            bench_spark(data, Path(tmp))
        return
    if sys.argv[1:] == ["postgres"]:
        with tempfile.TemporaryDirectory(prefix="agentmon-bench-") as tmp:
            data = Path(tmp) / "spans.jsonl"
            write_spans(data, SPANS)
            print(f"input: {SPANS:,} native spans, {data.stat().st_size / 1e6:.0f} MB")
            bench_postgres(data, Path(tmp))
        return
    print_sdk_bench()
    bench_ui()
    bench_ui_backfill()
    with tempfile.TemporaryDirectory(prefix="agentmon-bench-") as tmp:
        root = Path(tmp)
        data = root / "spans.jsonl"
        bench_ingest(root, data)
        bench_postgres(data, root)
        home = root / "home"
        (home / "landing").mkdir(parents=True)
        shutil.copyfile(data, home / "landing" / "spans.jsonl")
        full = _agentmon_run(home)
        bench_spark(data, root, duckdb_run=full)
        data.unlink()
        print(f"agentmon run, drop to marts through Dagster : {full:6.1f} s  (goal <= 30 s)")
        row(
            "`agentmon run` on the native file in a new home, drop to marts through Dagster",
            f"{full:.0f} s",
            "≤ 30 s",
        )
        write_spans(home / "landing" / "more.jsonl", SPANS // 100, offset=SPANS)
        os.utime(home / "landing" / "more.jsonl", (time.time() - 60, time.time() - 60))
        incremental = _agentmon_run(home)
        print(
            f"incremental run after +1% spans             : {incremental:6.1f} s  = {incremental / full:.0%} of the full run (goal <= 10%)"
        )
        row(
            "incremental run after 1% more spans",
            f"{incremental:.0f} s ({incremental / full:.0%} of the full run)",
            "≤ 10%",
        )
        idle = _agentmon_run(home)
        print(f"run with nothing new, answered from the ledger : {idle:6.1f} s  (goal <= 3 s)")
        row(
            "`agentmon run` with nothing new (answered from the ledger, no Dagster or dbt)",
            f"{idle:.1f} s",
            "≤ 3 s",
        )
        forced = _agentmon_run(home, "--force")
        print(f"run --force with nothing new (a run's fixed cost): {forced:6.1f} s")
        row(
            "`agentmon run --force` with nothing new (what a run costs when it has nothing to do)",
            f"{forced:.0f} s",
        )
        bench_backfill(home, full)


def bench_spark(data: Path, root: Path, duckdb_run: float | None = None) -> None:
    """`agentmon run` of the same native file in a new home on Spark local mode (spark://local[2])
    and on DuckDB: the same pipeline, on one machine here; where a cluster exists, its master's URL."""

    def new_home(name: str) -> Path:
        home = root / f"home-{name}"
        (home / "landing").mkdir(parents=True)
        shutil.copyfile(data, home / "landing" / "spans.jsonl")
        return home

    duck_ingest = _in_child(_ours, data, root / "ingest-reference.duckdb")[0]
    spark_ingest = _in_child(_ingest_spark, data, root / "home-spark-ingest")[0]
    print(f"ingest_file, {SPANS:,} spans, DuckDB           : {duck_ingest:6.1f} s")
    print(
        f"ingest_file, {SPANS:,} spans, Spark local[2]   : {spark_ingest:6.1f} s  = {spark_ingest / duck_ingest:.1f}x"
    )
    row(f"`ingest_file` of {SPANS:,} native spans into Spark local mode (Spark's reader, parsed by its executors) "
        "vs into DuckDB (`bench spark`)", f"{spark_ingest:.0f} s vs {duck_ingest:.0f} s ({spark_ingest / duck_ingest:.1f}×)")  # fmt: skip
    driver = _in_child(_ingest_spark_small, root / "home-spark-small-driver", False)[0]
    executors = _in_child(_ingest_spark_small, root / "home-spark-small-executors", True)[0]
    print(f"small file into Spark, parsed by agentmon    : {driver:6.2f} s per file")
    print(f"small file into Spark, read by Spark itself  : {executors:6.2f} s per file")
    row("a small native file (50 spans) into Spark local mode: parsed in the agentmon process (a file smaller than "
        "Spark's block) vs read by Spark itself (`bench spark`)", f"{driver:.1f} s vs {executors:.1f} s per file")  # fmt: skip
    if duckdb_run is None:
        duckdb_run = _agentmon_run(new_home("duckdb"))
    spark_run = _agentmon_run(new_home("spark"), url="spark://local[2]")
    print(f"agentmon run, {SPANS:,} spans, DuckDB           : {duckdb_run:6.1f} s")
    print(
        f"agentmon run, {SPANS:,} spans, Spark local[2]   : {spark_run:6.1f} s  = {spark_run / duckdb_run:.1f}x"
    )
    row(f"`agentmon run` of {SPANS:,} native spans on Spark local mode (2 cores, 2 GB) vs on DuckDB (`bench spark`)",
        f"{spark_run:.0f} s vs {duckdb_run:.0f} s ({spark_run / duckdb_run:.1f}×)")  # fmt: skip


def bench_backfill(home: Path, full: float) -> None:
    """`agentmon backfill` of 3 of the 30 days of the native file's home: nothing new to load, those
    days' rows of the marts rebuilt (their traces, metrics, events, daily aggregates)."""
    backfill = _agentmon_run(home, "--from", "2026-11-10", "--to", "2026-11-12", command="backfill")
    print(
        f"backfill of 3 of the 30 days                  : {backfill:6.1f} s  = {backfill / full:.0%} of the full run"
    )
    row("`agentmon backfill` of 3 of the file's 30 days (their rows of the marts rebuilt)",
        f"{backfill:.0f} s ({backfill / full:.0%} of the full run)")  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    finally:
        print_table()
