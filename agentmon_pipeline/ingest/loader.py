"""Load one landing file into the raw tables: detect, parse, quarantine, record in the ledger.

Guarantees (SPEC §3.3):
- per file, records loaded + records quarantined = records found (`raw.ingested_files`);
- the same bytes under any name are loaded once; a second drop is a `duplicate` ledger row;
- a file is atomic: its spans, metrics, events, quarantine rows and ledger row are written in one
  transaction, so a crash halfway leaves the warehouse as it was before that file;
- `(trace_id, span_id)` identifies a span: a span seen again replaces the earlier version.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.ingest import langfuse, native, otlp
from agentmon_pipeline.ingest.redaction import DEFAULT, RedactionPolicy, redact_text_sql
from agentmon_pipeline.storage import transaction
from agentmon_pipeline.storage.engines import Replace, in_duckdb, local_duckdb, write_raw

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024
DEFAULT_INGEST_MEMORY = "1GB"
# Converting OTLP or Langfuse documents builds JSON far larger than its input, in expressions that
# DuckDB cannot spill: a chunk of documents gets 1/128 of the memory limit (8 MB of lines at 1 GB;
# measured: 32 MB chunks fail at 1 GB, 4 MB ones at 256 MB).
CHUNK_SHARE = 128
READ_FORMATS = (
    "native JSONL (spans, metrics, events), OpenTelemetry OTLP JSON traces and Langfuse trace exports"
)


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


class WholeFileRejected(Exception):
    """The file cannot be read at all; it is quarantined as a whole with this reason."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _head(path: Path, gz: bool) -> bytes:
    try:
        if gz:
            with gzip.open(path, "rb") as handle:
                return handle.read(HEAD_BYTES)
        with open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise WholeFileRejected(f"truncated or corrupt gzip ({exc})") from None


def detect_format(head: bytes) -> str:
    """The format of a file from its first 64 KiB; raises WholeFileRejected for what we do not read."""
    if b"\x00" in head:
        raise WholeFileRejected(f"binary file; agentmon reads {READ_FORMATS}")
    # a line that is not UTF-8 is quarantined on its own when the file is read (`_text_chunks`):
    # it does not make the file unreadable, wherever it is
    text = head.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "empty"
    if text.lstrip().startswith("{") and '"resourceSpans"' in text[:4096]:
        return "otlp"
    if text.lstrip().startswith("{") and '"observations"' in text:
        return "langfuse"
    complete = lines[:-1] if len(head) == HEAD_BYTES else lines
    if not complete and lines[0].lstrip().startswith("{"):
        return "native"  # one line longer than the head: let the parser judge it
    for line in complete[:100]:
        try:
            if isinstance(json.loads(line), dict):
                return "native"
        except (ValueError, RecursionError):  # nesting deeper than Python's parser: DuckDB's judges it
            if line.lstrip().startswith("{"):
                return "native"
            continue
    raise WholeFileRejected(f"no JSON object in the first lines; agentmon reads {READ_FORMATS}")


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _fast_source(path: Path, gz: bool) -> str:
    """Every line of the file as one JSON value, streamed by DuckDB's reader (which fails on the
    first line that is not JSON). No line numbers: see parse_file."""
    compression = "gzip" if gz else "none"
    return f"""(
        select null::bigint as line_number, null::bigint as ordinal, j
        from read_json({_sql_path(path)}, format = 'newline_delimited', records = false,
                       columns = {{'j': 'JSON'}}, compression = '{compression}',
                       maximum_object_size = {max_line_bytes()})
    )"""


SLOW_RECORDS = "(select line_number, line_number as ordinal, j from lines)"


def _parse_slow(con: duckdb.DuckDBPyConnection, path: Path, gz: bool) -> None:
    """The file's JSON lines, numbered, in temp table `lines` (line_number, j), read in chunks
    (`_json_chunks`: memory bounded whatever the file's size); the lines that are not UTF-8 or not
    JSON go to the quarantine table. Its records: SLOW_RECORDS."""
    con.execute("create or replace temp table lines (line_number bigint, j json)")
    for _ in _json_chunks(con, path, gz, line_chunk_bytes()):
        con.execute("insert into lines select line_number, j from chunk_json")


def _json_chunks(con: duckdb.DuckDBPyConnection, path: Path, gz: bool, chunk_bytes: int) -> Iterator[None]:
    """Per chunk of the file (`_text_chunks`): its lines that are JSON in temp table `chunk_json`
    (line_number, j) when this yields, each parsed once (try_cast: NULL when it is not JSON); the
    others go to `bad_lines`."""
    for _ in _text_chunks(con, path, gz, chunk_bytes):
        con.execute(
            """
            create or replace temp table chunk_json as
            select line_number, line, try_cast(trim(line) as json) as j from chunk_lines
            """
        )
        con.execute(
            f"""
            insert into bad_lines
            select line_number, 'not valid JSON', {native.cap_sql("line")} from chunk_json where j is null
            """
        )
        con.execute("delete from chunk_json where j is null")
        yield
    con.execute("drop table if exists chunk_json")


DOCUMENT_FORMATS = {
    # format: (documents -> native records, the key a document of the format has, reason otherwise)
    "otlp": (
        otlp.otlp_records_sql,
        "resourceSpans",
        "not an OTLP ExportTraceServiceRequest (no resourceSpans)",
    ),
    "langfuse": (
        langfuse.langfuse_records_sql,
        "observations",
        "not a Langfuse trace export (no trace and observations)",
    ),
}


def _line_chunks(path: Path, gz: bool, chunk_bytes: int) -> Iterator[pa.Table]:
    """The file as tables of (line_number, line as bytes), about `chunk_bytes` of whole lines
    each. The splitting is done by `bytes.split` per chunk, in C: no Python loop over lines;
    decoding is DuckDB's (`_text_chunks`)."""
    opener = gzip.open if gz else open
    first, rest = 1, b""
    try:
        with opener(path, "rb") as handle:
            while True:
                block = handle.read(chunk_bytes)
                data = rest + block
                cut = data.rfind(b"\n") if block else len(data)
                if cut < 0:
                    rest = data
                    continue
                rest = data[cut + 1 :]
                if cut > 0 or block:
                    lines = data[:cut].split(b"\n")
                    yield pa.table({
                        "line_number": pa.array(range(first, first + len(lines)), pa.int64()),
                        "line": pa.array(lines, pa.large_binary()),
                    })  # fmt: skip
                    first += len(lines)
                if not block:
                    return
    except (OSError, EOFError, zlib.error) as exc:
        raise WholeFileRejected(f"truncated or corrupt gzip ({exc})") from None


def _text_chunks(con: duckdb.DuckDBPyConnection, path: Path, gz: bool, chunk_bytes: int) -> Iterator[None]:
    """Per chunk of the file (`_line_chunks`): its lines that are not UTF-8, or longer than a
    record may be (`max_line_bytes`: parsing one takes several times its size, in memory that
    cannot spill), go to `bad_lines`; the others, but empty ones, are view `chunk_lines`
    (line_number, line) when this yields."""
    longest = max_line_bytes()
    too_long = (f"'line of ' || round(octet_length(line) / 1e6, 1) || ' MB, longer than the "
                f"{longest / 1e6:.0f} MB a record may have at this MONITORING_INGEST_MEMORY'")  # fmt: skip
    for chunk in _line_chunks(path, gz, chunk_bytes):
        con.register("chunk_raw", chunk)
        con.execute(
            f"""
            insert into bad_lines
            select line_number,
                case when octet_length(line) > {longest} then {too_long} else 'not valid UTF-8' end,
                {native.cap_sql("coalesce(try(decode(line[1:65536])), (line[1:65536])::varchar)")}
            from chunk_raw where octet_length(line) > {longest} or try(decode(line)) is null
            """
        )
        con.execute(
            f"""
            create or replace temp view chunk_lines as
            select line_number, text as line
            from (select line_number, try(decode(line)) as text from chunk_raw where octet_length(line) <= {longest})
            where trim(text) <> ''
            """
        )
        yield
        con.unregister("chunk_raw")
    con.execute("drop view if exists chunk_lines")


def parse_documents(con: duckdb.DuckDBPyConnection, path: Path, gz: bool, head: bytes, fmt: str) -> None:
    """Fill `typed` and `bad_lines` from a file of JSON documents (OTLP requests, Langfuse
    exports) -> native records: one document per line, or one pretty-printed document per file.

    A file of one document per line is read and converted in chunks of 1/CHUNK_SHARE of the
    ingest's memory limit: the JSON the conversion builds is many times the size of its input,
    and a whole big file at once needs memory in proportion to it (16.5 GB for a 459 MB Collector
    file). Only the typed records are kept across chunks (in tables DuckDB may spill)."""
    con.execute(
        "create or replace temp table bad_lines (line_number bigint, reason varchar, raw_line varchar)"
    )
    # per chunk its records are typed at once (`typed` keeps no JSON of a valid record, a table
    # of converted records would be as large as the file); `originals`: the span or observation as
    # it was in the file, for the records the quarantine may keep
    none = "(select null::bigint as line_number, null::bigint as ordinal, null::json as j where false)"
    con.execute(f"create or replace temp table typed as {native.typed_records_sql(none)}")
    con.execute("create or replace temp table originals (ordinal bigint, original varchar)")
    first_line = next(
        (line.strip() for line in head.decode("utf-8", "replace").splitlines() if line.strip()), ""
    )
    if first_line == "{":  # one pretty-printed request: the whole file is one JSON document
        try:
            con.execute(
                f"""
                create or replace temp table requests as
                select 1::bigint as line_number, j, {_is_document(fmt)} as is_document
                from read_json({_sql_path(path)}, format = 'unstructured', records = false,
                               columns = {{'j': 'JSON'}}, compression = '{"gzip" if gz else "none"}',
                               maximum_object_size = {max_document_bytes()})
                """
            )
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as exc:
            if "maximum_object_size" in str(exc):
                raise WholeFileRejected(
                    f"one JSON document larger than an ingest reads at once ({max_document_bytes() // 1000**2} MB "
                    "at this MONITORING_INGEST_MEMORY): write one request per line, as the Collector's file "
                    "exporter does, or raise MONITORING_INGEST_MEMORY"
                ) from None
            raise WholeFileRejected(f"not a valid JSON document ({str(exc).splitlines()[0]})") from None
        _convert_documents(con, fmt)
    else:
        for _ in _json_chunks(con, path, gz, document_chunk_bytes()):
            # the document check once per request: a request is large, every parse costs its size
            con.execute(
                f"create or replace temp table requests as "
                f"select line_number, j, {_is_document(fmt)} as is_document from chunk_json"
            )
            _convert_documents(con, fmt)
    con.execute("drop table if exists requests")
    con.execute("drop table if exists recs")
    _exact_text_check(con)


def _is_document(fmt: str) -> str:
    """SQL: JSON value `j` is a document of the format (an object with the format's key as an
    array; a path into anything but an object gives NULL, so one parse tells both)."""
    return f"coalesce(json_type(j, '$.{DOCUMENT_FORMATS[fmt][1]}') = 'ARRAY', false)"


def _convert_documents(con: duckdb.DuckDBPyConnection, fmt: str) -> None:
    """The JSON documents in temp table `requests` (line_number, j, is_document) -> bad lines, and
    their records typed into `typed` (and the originals of those that may be quarantined into
    `originals`)."""
    to_records, _, reason = DOCUMENT_FORMATS[fmt]
    con.execute(
        f"insert into bad_lines select line_number, {native._lit(reason)}, j::varchar from requests "
        f"where not is_document"
    )
    offset = con.execute("select count(*) from typed").fetchall()[0][0]
    good = "(select line_number, j from requests where is_document)"
    *prepare, records = to_records(good)
    for statement in prepare:
        con.execute(statement)
    con.execute(
        f"create or replace temp table recs as select line_number, ordinal + {offset} as ordinal, j, original from ({records})"
    )
    con.execute(f"insert into typed {native.typed_records_sql('recs')}")
    con.execute(
        f"""
        insert into originals select ordinal, original from recs
        where ordinal in (select ordinal from typed where ordinal > {offset} and (reason is not null or needs_exact_check))
        """
    )


def _exact_text_check(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        update typed set reason = x.reason
        from ({native.exact_text_check_sql("(select line_number, ordinal, j from typed where needs_exact_check and reason is null)")}) x
        where typed.ordinal = x.ordinal and x.reason is not null
        """
    )


RTYPE = "coalesce(lower(trim(\"type\")), 'span')"


def _typed(con: duckdb.DuckDBPyConnection, source: str) -> tuple[int, int, int]:
    """Map the records of `source` (a table or subquery of line_number, ordinal, j); returns
    (invalid records, records needing an exact type check, repeated span or metric keys within
    the file)."""
    con.execute(f"create or replace temp table typed as {native.typed_records_sql(source)}")
    valid_span = f"reason is null and {RTYPE} = 'span'"
    valid_metric = f"reason is null and {RTYPE} = 'metric'"
    row = con.execute(
        f"""
        select
            count(*) filter (where reason is not null),
            count(*) filter (where needs_exact_check),
            count(*) filter (where {valid_span})
                - count(distinct (trim(trace_id), trim(span_id))) filter (where {valid_span})
            + count(*) filter (where {valid_metric})
                - count(distinct (trim(name), time__ts, labels::varchar)) filter (where {valid_metric})
        from typed
        """
    ).fetchall()[0]  # fetchall: a half-read result would block the next relation query
    return int(row[0]), int(row[1]), int(row[2])


def parse_file(con: duckdb.DuckDBPyConnection, path: Path, gz: bool) -> bool:
    """Fill temp tables `typed` (records with reason) and `bad_lines` (lines that are not JSON).

    Returns True when the fast path did it: then no key repeats within the file.
    """
    con.execute(
        "create or replace temp table bad_lines (line_number bigint, reason varchar, raw_line varchar)"
    )
    try:
        # The fast path has no line numbers: anything that needs them (a record to quarantine, a
        # key repeated within the file, where the later line wins) is done by the slow path. The
        # records come straight from the reader: the file's JSON text is never a table of its own.
        if _typed(con, _fast_source(path, gz)) == (0, 0, 0):
            return True
    except duckdb.Error:
        pass
    _parse_slow(con, path, gz)
    try:
        _typed(con, SLOW_RECORDS)
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        raise WholeFileRejected(f"cannot parse the file ({str(exc).splitlines()[0]})") from None
    finally:
        con.execute("drop table lines")
    _exact_text_check(con)
    return False


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


UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
         "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}  # fmt: skip


def ingest_memory_setting() -> str:
    """MONITORING_INGEST_MEMORY as the user wrote it (default 1GB)."""
    return os.environ.get("MONITORING_INGEST_MEMORY", DEFAULT_INGEST_MEMORY)


def ingest_memory() -> int:
    """MONITORING_INGEST_MEMORY (default 1GB): how much memory DuckDB may use while it ingests a
    file; what does not fit spills to disk under AGENTMON_HOME/tmp. In bytes."""
    text = ingest_memory_setting()
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", text, re.IGNORECASE)
    size = int(float(match.group(1)) * UNITS[(match.group(2) or "").lower()]) if match else 0
    if size < 128 * 1000**2:
        raise UserError(f"MONITORING_INGEST_MEMORY={text!r}: expected a size of at least 128MB, such as 512MB or 2GB")
    return size


def max_line_bytes() -> int:
    """The longest line the fast reader takes (its buffers grow with it): 1/16 of the ingest's
    memory, at most 1 GiB. A longer line is read by the chunked path."""
    return min(1 << 30, ingest_memory() // 16)


def max_document_bytes() -> int:
    """The largest pretty-printed document (a file of one request) read whole: 1/4 of the
    ingest's memory (DuckDB's reader buffers twice the size), at most 1 GiB."""
    return min(1 << 30, ingest_memory() // 4)


def line_chunk_bytes() -> int:
    """The lines the chunked path reads at once: 1/32 of the ingest's memory, >= 1 MB."""
    return max(1 << 20, ingest_memory() // 32)


def document_chunk_bytes() -> int:
    """The lines of documents converted at once: 1/CHUNK_SHARE of the ingest's memory, >= 1 MB."""
    return max(1 << 20, ingest_memory() // CHUNK_SHARE)


@contextlib.contextmanager
def bounded_memory(duck: duckdb.DuckDBPyConnection, tmp_dir: Path, limit: int, own: bool) -> Iterator[None]:
    """DuckDB holds at most `limit` bytes while it ingests (its setting is per database, so the
    warehouse's is restored after) and spills the rest to disk: `tmp_dir`/spill for the in-memory
    database of a PostgreSQL ingest (`own`), the warehouse's own `.tmp` folder beside it else."""
    before = duck.execute("select current_setting('memory_limit')").fetchall()[0][0]
    duck.execute(f"set memory_limit = '{limit}B'")
    if own:
        spill = tmp_dir / "spill"
        spill.mkdir(parents=True, exist_ok=True)
        duck.execute(f"set temp_directory = {_sql_path(spill)}")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # a connection the error closed has nothing to restore
            duck.execute(f"set memory_limit = '{before}'")


def ingest_file(con, path: Path, tmp_dir: Path, policy: RedactionPolicy = DEFAULT, sha256: str | None = None) -> FileResult:
    """Ingest one file into the raw tables in one transaction. Never raises for bad content.

    `con` is the warehouse. DuckDB parses the file: in the warehouse itself when it is DuckDB,
    else in memory, and the rows go to PostgreSQL by COPY (`_write_postgres`).

    A value no check foresaw that still makes DuckDB fail on the file's content (a conversion, a
    constraint, a nesting too deep) quarantines the file whole with that reason, after the file's
    transaction was rolled back: one hostile file never stops the files after it. Errors of the
    machine (disk, memory, connection) are raised, since the file itself may be fine. `sha256`:
    the file's hash when the caller has it (the landing sensor's), else it is computed."""
    limit = ingest_memory()
    try:
        with in_duckdb(con, ()) as duck, bounded_memory(duck, tmp_dir, limit, own=duck is not con):
            return _ingest_file(duck, con, path, tmp_dir, policy, sha256)
    except duckdb.OutOfMemoryException as exc:
        raise UserError(f"{path.name}: ingesting it needs more memory than "
                        f"MONITORING_INGEST_MEMORY={ingest_memory_setting()} allows "
                        f"({str(exc).splitlines()[0][:200]}); raise it: the file stays in the landing folder "
                        f"and loads at the next run") from None  # fmt: skip
    except CONTENT_ERRORS as exc:
        reason = f"could not be ingested ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
        with local_duckdb() as duck:
            return _quarantine_whole_file(duck, con, path.resolve(), _new_result(con, path.resolve(), sha256), reason,
                                          path.stat().st_mtime_ns, _is_gzip(path), policy)  # fmt: skip


# What the content of a file can make DuckDB (or the PostgreSQL copy) raise, as opposed to the
# machine: the file is quarantined whole with the reason instead of failing the run.
CONTENT_ERRORS = (
    duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfRangeException,
    duckdb.ConstraintException, duckdb.BinderException, duckdb.NotImplementedException,
    psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded, psycopg.errors.IntegrityError,
    RecursionError, OverflowError, ValueError, UnicodeError,
)  # fmt: skip


def _new_result(con, path: Path, sha256: str | None = None) -> FileResult:
    result = FileResult(path=str(path), sha256=sha256 or sha256_of(path), bytes=path.stat().st_size, format=None,
                        status="loaded")  # fmt: skip
    result.load_id = int(con.execute("select nextval('raw.load_id_seq')").fetchone()[0])
    return result


def _ingest_file(duck, con, path: Path, tmp_dir: Path, policy: RedactionPolicy, sha256: str | None) -> FileResult:
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

    gz = _is_gzip(path)
    try:
        head = _head(path, gz)
        result.format = detect_format(head)
        if result.format in DOCUMENT_FORMATS:
            parse_documents(duck, path, gz, head, result.format)
            fast = False
        else:
            fast = result.format != "empty" and parse_file(duck, path, gz)
    except WholeFileRejected as exc:
        return _quarantine_whole_file(duck, con, path, result, str(exc), stat.st_mtime_ns, gz, policy)

    if result.format == "empty":
        result.status = "empty"
        _ledger_row(con, result, stat.st_mtime_ns)
        return result

    load_id = result.load_id
    valid = "(select * from typed where reason is null)"
    # A record converted from another format is quarantined as it was in the file, not converted.
    bad_record_text, originals = (
        ("coalesce(originals.original, typed.j::varchar)", "left join originals using (ordinal)")
        if result.format in DOCUMENT_FORMATS
        else ("typed.j::varchar", "")
    )
    bad_records = duck.sql(
        f"""
        select typed.line_number, reason, {native.cap_sql(redact_text_sql(bad_record_text, policy))} as raw_line
        from typed {originals} where reason is not null
        union all
        select line_number, reason, {redact_text_sql("raw_line", policy)} from bad_lines
        """
    ).to_arrow_table()
    counts = duck.execute(
        f"""
        select count(*) filter (where {RTYPE} = 'span'), count(*) filter (where {RTYPE} = 'metric'),
               count(*) filter (where {RTYPE} = 'event')
        from typed where reason is null
        """
    ).fetchall()[0]  # fetchall: a half-read result would block the next statement
    result.spans, result.metrics, result.events = map(int, counts)
    result.quarantined = bad_records.num_rows
    result.loaded = result.spans + result.metrics + result.events
    result.lines = result.loaded + result.quarantined
    result.status = "loaded" if result.quarantined == 0 else ("partial" if result.loaded else "quarantined")
    # counted by DuckDB: pyarrow's group_by would import its dataset engine (and pandas) per run
    duck.register("bad_records", bad_records)
    result.reasons = dict(duck.execute("select reason, count(*) from bad_records group by reason").fetchall())
    duck.unregister("bad_records")

    # Within a file the later line wins (ordinal); across files the later file wins (the rows with
    # the same key are deleted first). One plan, applied by the warehouse's engine.
    latest = "qualify row_number() over (partition by {} order by ordinal desc) = 1"
    replaces = []
    if result.spans:
        rows = native.span_rows_sql(valid, load_id, result.format, policy)
        replaces.append(Replace(
            "raw.spans",
            f"select * exclude (ordinal) from ({rows}) " + ("" if fast else latest.format("trace_id, span_id")),
            f"select distinct trim(trace_id) as trace_id, trim(span_id) as span_id from typed "
            f"where reason is null and {RTYPE} = 'span'",
            "t.trace_id = n.trace_id and t.span_id = n.span_id",
        ))  # fmt: skip
    if result.metrics:
        duck.execute(f"create or replace temp table new_metrics as {native.metric_rows_sql(valid, load_id, policy)}")
        replaces.append(Replace(
            "raw.metrics",
            "select * exclude (ordinal) from new_metrics " + latest.format("name, time, labels::varchar"),
            "select distinct name, time, labels from new_metrics",
            "t.name = n.name and t.time = n.time and coalesce(t.labels::text, '') = coalesce(n.labels::text, '')",
        ))  # fmt: skip
    if result.events:
        duck.execute(f"create or replace temp table new_events as {native.event_rows_sql(valid, load_id, policy)}")
        replaces.append(Replace(
            "raw.events", "select * exclude (ordinal) from new_events " + latest.format("event_id"),
            "select distinct event_id from new_events", "t.event_id = n.event_id",
        ))  # fmt: skip
    duck.register("bad_records", bad_records)
    duck.execute(
        "create or replace temp table new_quarantine as select ?::bigint as load_id, ? as file_path, ? as sha256, "
        "line_number, reason, raw_line, now() as quarantined_at from bad_records",
        [load_id, result.path, sha],
    )
    duck.unregister("bad_records")
    write_raw(duck, con, replaces, [("raw.quarantine", "select * from new_quarantine")],
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
