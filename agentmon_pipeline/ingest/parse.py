"""Parse: a landing file, in the format `detect` found, into one record shape: temp table `typed`
(the native record of every line or converted span, with the reason it is refused, if it is) and
`bad_lines` (lines that are not JSON, not UTF-8, or not a document of the format). All in DuckDB,
in chunks bounded by the ingest's memory (`limits`): no Python loop over records."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from agentmon_pipeline.ingest import langfuse, limits, native, otlp
from agentmon_pipeline.ingest.detect import WholeFileRejected
from agentmon_pipeline.ingest.limits import sql_path


def _fast_source(path: Path, gz: bool) -> str:
    """Every line of the file as one JSON value, streamed by DuckDB's reader (which fails on the
    first line that is not JSON). No line numbers: see parse_file."""
    compression = "gzip" if gz else "none"
    return f"""(
        select null::bigint as line_number, null::bigint as ordinal, j
        from read_json({sql_path(path)}, format = 'newline_delimited', records = false,
                       columns = {{'j': 'JSON'}}, compression = '{compression}',
                       maximum_object_size = {limits.max_line_bytes()})
    )"""


# What the content of a file can make DuckDB's parse raise, as opposed to the machine (disk,
# memory): the loader quarantines the file whole with the reason instead of failing the run.
PARSE_ERRORS = (
    duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfRangeException,
    duckdb.ConstraintException, duckdb.BinderException, duckdb.NotImplementedException,
    RecursionError, OverflowError, ValueError, UnicodeError,
)  # fmt: skip


def content_error_reason(exc: BaseException) -> str:
    """The quarantine's reason for a file that raised one of PARSE_ERRORS (or the copy's)."""
    return f"could not be ingested ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"


BAD_LINES = "create or replace temp table bad_lines (line_number bigint, reason varchar, raw_line varchar)"
SLOW_RECORDS = "(select line_number, line_number as ordinal, j from lines)"


def _parse_slow(con: duckdb.DuckDBPyConnection, path: Path, gz: bool) -> None:
    """The file's JSON lines, numbered, in temp table `lines` (line_number, j), read in chunks
    (`_json_chunks`: memory bounded whatever the file's size); the lines that are not UTF-8 or not
    JSON go to the quarantine table. Its records: SLOW_RECORDS."""
    con.execute("create or replace temp table lines (line_number bigint, j json)")
    for _ in _json_chunks(con, path, gz, limits.line_chunk_bytes()):
        con.execute("insert into lines select line_number, j from chunk_json")


def _json_chunks(con: duckdb.DuckDBPyConnection, path: Path, gz: bool, chunk_bytes: int) -> Iterator[None]:
    """Per chunk of the file (`_text_chunks`): its lines that are JSON in temp table `chunk_json`
    (line_number, j) when this yields, each parsed once (try_cast: NULL when it is not JSON); the
    others go to `bad_lines`."""
    for _ in _text_chunks(con, path, gz, chunk_bytes):
        for statement in _json_chunk_sql():
            con.execute(statement)
        yield
    con.execute("drop table if exists chunk_json")


def _json_chunk_sql() -> list[str]:
    """Statements: the lines of view `chunk_lines` that are JSON into temp table `chunk_json`
    (line_number, line, j), each parsed once (try_cast: NULL when it is not JSON); the others into
    `bad_lines`."""
    return [
        """
        create or replace temp table chunk_json as
        select line_number, line, try_cast(trim(line) as json) as j from chunk_lines
        """,
        f"""
        insert into bad_lines
        select line_number, 'not valid JSON', {native.cap_sql("line")} from chunk_json where j is null
        """,
        "delete from chunk_json where j is null",
    ]


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
    for chunk in _line_chunks(path, gz, chunk_bytes):
        con.register("chunk_raw", chunk)
        for statement in _text_chunk_sql():
            con.execute(statement)
        yield
        con.unregister("chunk_raw")
    con.execute("drop view if exists chunk_lines")


def _text_chunk_sql() -> list[str]:
    """Statements: the lines of `chunk_raw` (line_number, line as bytes) that are not UTF-8, or
    longer than a record may be, into `bad_lines`; the others, but empty ones, view `chunk_lines`
    (line_number, line)."""
    longest = limits.max_line_bytes()
    too_long = (f"'line of ' || round(octet_length(line) / 1e6, 1) || ' MB, longer than the "
                f"{longest / 1e6:.0f} MB a record may have at this MONITORING_INGEST_MEMORY'")  # fmt: skip
    return [
        f"""
        insert into bad_lines
        select line_number,
            case when octet_length(line) > {longest} then {too_long} else 'not valid UTF-8' end,
            {native.cap_sql("coalesce(try(decode(line[1:65536])), (line[1:65536])::varchar)")}
        from chunk_raw where octet_length(line) > {longest} or try(decode(line)) is null
        """,
        f"""
        create or replace temp view chunk_lines as
        select line_number, text as line
        from (select line_number, try(decode(line)) as text from chunk_raw where octet_length(line) <= {longest})
        where trim(text) <> ''
        """,
    ]


def chunk_sql() -> list[str]:
    """Statements that parse one chunk of a native JSONL file, the lines of view `chunk_raw`
    (line_number, line as bytes), into `typed` and `bad_lines` (both made anew), as the slow path
    of `parse_file` does a whole file: Spark's executors parse a file this way, chunk by chunk
    where its blocks are (`storage.spark_ingest`)."""
    records = "(select line_number, line_number as ordinal, j from chunk_json)"
    return [
        BAD_LINES,
        *_text_chunk_sql(),
        *_json_chunk_sql(),
        f"create or replace temp table typed as {native.typed_records_sql(records)}",
        _exact_text_check_sql(),
    ]


def parse_documents(con: duckdb.DuckDBPyConnection, path: Path, gz: bool, head: bytes, fmt: str) -> None:
    """Fill `typed` and `bad_lines` from a file of JSON documents (OTLP requests, Langfuse
    exports) -> native records: one document per line, or one pretty-printed document per file.

    A file of one document per line is read and converted in chunks of 1/CHUNK_SHARE of the
    ingest's memory limit: the JSON the conversion builds is many times the size of its input,
    and a whole big file at once needs memory in proportion to it (16.5 GB for a 459 MB Collector
    file). Only the typed records are kept across chunks (in tables DuckDB may spill)."""
    con.execute(BAD_LINES)
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
                from read_json({sql_path(path)}, format = 'unstructured', records = false,
                               columns = {{'j': 'JSON'}}, compression = '{"gzip" if gz else "none"}',
                               maximum_object_size = {limits.max_document_bytes()})
                """
            )
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as exc:
            if "maximum_object_size" in str(exc):
                raise WholeFileRejected(
                    f"one JSON document larger than an ingest reads at once ({limits.max_document_bytes() // 1000**2} MB "
                    "at this MONITORING_INGEST_MEMORY): write one request per line, as the Collector's file "
                    "exporter does, or raise MONITORING_INGEST_MEMORY"
                ) from None
            raise WholeFileRejected(f"not a valid JSON document ({str(exc).splitlines()[0]})") from None
        _convert_documents(con, fmt)
    else:
        for _ in _json_chunks(con, path, gz, limits.document_chunk_bytes()):
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
    con.execute(_exact_text_check_sql())


def _exact_text_check_sql() -> str:
    flagged = "(select line_number, ordinal, j from typed where needs_exact_check and reason is null)"
    return f"""
        update typed set reason = x.reason
        from ({native.exact_text_check_sql(flagged)}) x
        where typed.ordinal = x.ordinal and x.reason is not null
        """


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
    con.execute(BAD_LINES)
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


def parse(con: duckdb.DuckDBPyConnection, path: Path, gz: bool, head: bytes, fmt: str) -> bool:
    """Fill `typed` and `bad_lines` from the file of format `fmt` (not "empty"); True when no
    key repeats within the file (the write plan then needs no dedup). Raises WholeFileRejected."""
    if fmt in DOCUMENT_FORMATS:
        parse_documents(con, path, gz, head, fmt)
        return False
    return parse_file(con, path, gz)
