"""Load one landing file into the raw tables: detect, parse, plan the writes, apply them with the
file's ledger row; quarantine what cannot be read.

Guarantees (SPEC §3.3):
- per file, records loaded + records quarantined = records found (`raw.ingested_files`);
- the same bytes under any name are loaded once; a second drop is a `duplicate` ledger row;
- a file is atomic: its spans, metrics, events, quarantine rows and ledger row are written in one
  transaction, so a crash halfway leaves the warehouse as it was before that file;
- `(trace_id, span_id)` identifies a span: a span seen again replaces the earlier version.

The steps are modules of their own: `detect` (the format, from the first bytes), `parse` (the
file, in its format, into one record shape, in DuckDB), `plan` (the rows each raw table gets),
and `storage.engines.write_raw` (the plan applied by the warehouse's engine). `limits` holds the
memory an ingest may use. On Spark a native file is read and parsed by Spark's executors with
the same statements (`spark_reader`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psycopg

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.ingest import detect, limits, native
from agentmon_pipeline.ingest.detect import WholeFileRejected, detect_format, is_gzip, read_head
from agentmon_pipeline.ingest.parse import PARSE_ERRORS, content_error_reason, parse
from agentmon_pipeline.ingest.plan import plan_writes
from agentmon_pipeline.ingest.redaction import DEFAULT, RedactionPolicy, redact_text_sql
from agentmon_pipeline.storage import transaction
from agentmon_pipeline.storage.engines import engine_of, in_duckdb, local_duckdb, write_raw


@dataclass
class FileResult:
    path: str
    sha256: str
    bytes: int
    format: str | None
    status: str
    lines: int = 0
    loaded: int = 0
    quarantined: int = 0
    spans: int = 0
    metrics: int = 0
    events: int = 0
    reason: str | None = None
    load_id: int | None = None
    duplicate_of: int | None = None
    reasons: dict[str, int] = field(default_factory=dict)


def _ledger_row(con: duckdb.DuckDBPyConnection, r: FileResult, mtime_ns: int | None) -> None:
    con.execute(
        """
        insert into raw.ingested_files
        (load_id, file_path, file_name, sha256, bytes, mtime_ns, format, status, lines, loaded,
         quarantined, reason, duplicate_of, ingested_at)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())
        """,
        [r.load_id, r.path, Path(r.path).name, r.sha256, r.bytes, mtime_ns, r.format, r.status,
         r.lines, r.loaded, r.quarantined, r.reason, r.duplicate_of],
    )  # fmt: skip


def already_loaded(con: duckdb.DuckDBPyConnection, sha: str) -> int | None:
    row = con.execute(
        "select min(load_id) from raw.ingested_files where sha256 = ? and status not in ('duplicate', 'refused')",
        [sha],
    ).fetchone()
    return row[0]


def record_refused(con, path: Path, size: int, mtime_ns: int, reason: str) -> FileResult:
    """A ledger row for a file that is not read (a symlink out of the landing folder): status
    `refused`, no records. Its sha256 is of the link's own path, since the target is never opened."""
    sha = hashlib.sha256(f"refused:{path}".encode()).hexdigest()
    result = FileResult(path=str(path), sha256=sha, bytes=size, format=None, status="refused", reason=reason)
    result.load_id = int(con.execute("select nextval('raw.load_id_seq')").fetchone()[0])
    _ledger_row(con, result, mtime_ns)
    return result


def ingest_file(
    con, path: Path, tmp_dir: Path, policy: RedactionPolicy = DEFAULT, sha256: str | None = None
) -> FileResult:
    """Ingest one file into the raw tables in one transaction. Never raises for bad content.

    `con` is the warehouse. DuckDB parses the file: in the warehouse itself when it is DuckDB,
    else in memory, and the rows go to PostgreSQL by COPY (`storage.engines.write_raw`).

    A value no check foresaw that still makes DuckDB fail on the file's content (a conversion, a
    constraint, a nesting too deep) quarantines the file whole with that reason, after the file's
    transaction was rolled back: one hostile file never stops the files after it. Errors of the
    machine (disk, memory, connection) are raised, since the file itself may be fine. `sha256`:
    the file's hash when the caller has it (the landing sensor's), else it is computed."""
    limit = limits.ingest_memory()
    try:
        with in_duckdb(con, ()) as duck, limits.bounded_memory(duck, tmp_dir, limit, own=duck is not con):
            return _ingest_file(duck, con, path, tmp_dir, policy, sha256)
    except duckdb.OutOfMemoryException as exc:
        raise UserError(f"{path.name}: ingesting it needs more memory than "
                        f"MONITORING_INGEST_MEMORY={limits.ingest_memory_setting()} allows "
                        f"({str(exc).splitlines()[0][:200]}); raise it: the file stays in the landing folder "
                        f"and loads at the next run") from None  # fmt: skip
    except CONTENT_ERRORS as exc:
        reason = content_error_reason(exc)
        with local_duckdb() as duck:
            return _quarantine_whole_file(duck, con, path.resolve(), _new_result(con, path.resolve(), sha256), reason,
                                          path.stat().st_mtime_ns, is_gzip(path), policy)  # fmt: skip


# What the content of a file can make DuckDB (or the PostgreSQL copy) raise, as opposed to the
# machine: the file is quarantined whole with the reason instead of failing the run.
CONTENT_ERRORS = (
    *PARSE_ERRORS,
    psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded, psycopg.errors.IntegrityError,
)  # fmt: skip


def _new_result(con, path: Path, sha256: str | None = None) -> FileResult:
    result = FileResult(path=str(path), sha256=sha256 or detect.sha256_of(path), bytes=path.stat().st_size, format=None,
                        status="loaded")  # fmt: skip
    result.load_id = int(con.execute("select nextval('raw.load_id_seq')").fetchone()[0])
    return result


def _ingest_file(
    duck, con, path: Path, tmp_dir: Path, policy: RedactionPolicy, sha256: str | None
) -> FileResult:
    path = path.resolve()
    stat = path.stat()
    result = _new_result(con, path, sha256)
    sha = result.sha256

    previous = already_loaded(con, sha)
    if previous is not None:
        result.status, result.duplicate_of = "duplicate", previous
        result.reason = f"same content as load {previous}"
        _ledger_row(con, result, stat.st_mtime_ns)
        return result

    gz = is_gzip(path)
    spark_reads = False
    try:
        head = read_head(path, gz)
        result.format = detect_format(head)
        # Spark reads a native file larger than its block itself, where it lies (and writes its
        # rows): ingest.spark_reader
        if result.format == "native" and engine_of(con) == "spark":
            from agentmon_pipeline.ingest import spark_reader

            spark_reads = spark_reader.reads_itself(con, stat.st_size)
        if spark_reads:
            plan = spark_reader.ingest_native(con, path, gz, result.load_id, sha, policy, tmp_dir)
        else:
            fast = result.format != "empty" and parse(duck, path, gz, head, result.format)
    except WholeFileRejected as exc:
        return _quarantine_whole_file(duck, con, path, result, str(exc), stat.st_mtime_ns, gz, policy)

    if result.format == "empty":
        result.status = "empty"
        _ledger_row(con, result, stat.st_mtime_ns)
        return result

    if not spark_reads:
        plan = plan_writes(duck, result.format, fast, result.load_id, result.path, sha, policy)
    result.spans, result.metrics, result.events = plan.spans, plan.metrics, plan.events
    result.loaded, result.quarantined, result.reasons = plan.loaded, plan.quarantined, plan.reasons
    result.lines = result.loaded + result.quarantined
    result.status = "loaded" if result.quarantined == 0 else ("partial" if result.loaded else "quarantined")
    write_raw(duck, con, plan.replaces, plan.appends,
              lambda warehouse: _ledger_row(warehouse, result, stat.st_mtime_ns))  # fmt: skip
    return result


def _quarantine_whole_file(
    duck: duckdb.DuckDBPyConnection,
    con,
    path: Path,
    result: FileResult,
    reason: str,
    mtime_ns: int,
    gz: bool,
    policy: RedactionPolicy = DEFAULT,
) -> FileResult:
    """The file counts as one record, quarantined with its reason and (if text) its first 64 KiB."""
    result.status, result.reason = "quarantined", reason
    result.lines, result.loaded, result.quarantined = 1, 0, 1
    result.reasons = {reason: 1}
    try:
        head = path.read_bytes()[: native.CAP_BYTES] if not gz else b""
        preview = head.decode("utf-8") if b"\x00" not in head else None
    except (OSError, UnicodeDecodeError):
        preview = None
    if preview is not None:
        preview = duck.execute(
            f"select {redact_text_sql('x', policy)} from (select ?::varchar as x)", [preview]
        ).fetchall()[0][0]
    with transaction(con):
        con.execute(
            "insert into raw.quarantine values (?, ?, ?, null, ?, ?, now())",
            [result.load_id, result.path, result.sha256, reason, preview],
        )
        _ledger_row(con, result, mtime_ns)
    return result
