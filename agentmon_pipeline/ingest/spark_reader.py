"""A native JSONL file into the Spark warehouse's raw tables, read by Spark itself.

Spark's text reader splits the file into blocks where it lies (a gzip file is one block) and
hands each block's lines to the executors as raw bytes; each executor parses its lines, in
chunks, with the loader's own DuckDB statements (`ingest.parse.chunk_sql`, `ingest.plan`: the one
parser DuckDB and PostgreSQL warehouses use, no Python loop over records); Spark writes what they
give to a staging folder beside the tables, and Spark SQL keeps the file's latest line per key,
replaces the rows with those keys and appends the quarantine. The driver reads the file's first
64 KiB (its format) and hashes it (the ledger's dedup), nothing more.

Line numbers, which the quarantine keeps: a first pass counts each block's lines; the lines of a
block are numbered from the sum of the counts before it, in the order the reader gives them.

The loader's guarantees hold (`ingest.loader`): records loaded + quarantined = records found, a
file's newer spans replace earlier ones, a record that cannot be read is quarantined with its
line, and a content error in any block quarantines the whole file before anything is written.
Spark has no transaction: the ledger's row is written after the rows (by the loader), so an
interrupted load is loaded again at the next run.

On a cluster the landing folder must be at the same path on every worker (a shared mount), and
the workers need agentmon's Python packages (DuckDB, pyarrow) as they need pyspark's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import duckdb
import pyarrow as pa

from agentmon_pipeline.ingest import limits, parse
from agentmon_pipeline.ingest.detect import WholeFileRejected
from agentmon_pipeline.ingest.native import event_rows_sql, metric_rows_sql, span_rows_sql
from agentmon_pipeline.ingest.plan import KEYS, WritePlan, bad_records_sql, latest_sql, quarantine_rows_sql
from agentmon_pipeline.ingest.redaction import RedactionPolicy
from agentmon_pipeline.storage.engines import local_duckdb
from agentmon_pipeline.storage.spark import SparkConnection, _plain_arrow, _spark_sql

TARGETS = ("raw.spans", "raw.metrics", "raw.events")
QUARANTINE = "raw.quarantine"
FAILED = "failed"  # the target of the one row an executor gives when a chunk cannot be parsed


def reads_itself(con: SparkConnection, size: int) -> bool:
    """Spark reads a file of `size` bytes itself when the file is larger than one of its blocks
    (`spark.sql.files.maxPartitionBytes`, 128 MB by default): then its executors share the parse.
    A smaller file is one task either way, and costs half as much parsed in the agentmon process
    (fewer Spark jobs: docs/spark.md)."""
    spark = con.spark
    block = spark.conf.get("spark.sql.files.maxPartitionBytes")
    return size > spark.sparkContext._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(block)


def ingest_native(con: SparkConnection, path: Path, gz: bool, load_id: int, sha256: str,
                  policy: RedactionPolicy, scratch: Path) -> WritePlan:  # fmt: skip
    """Write the records of the native JSONL file `path` (gzip-compressed when `gz`) to the raw
    tables under `load_id`, its unreadable lines to the quarantine; the counts, as a WritePlan
    that has nothing left to write. Raises WholeFileRejected, with nothing written, when the file
    cannot be parsed. `scratch`: a local folder for a link to a file Spark cannot read by name."""
    from pyspark.sql import functions as F

    spark = con.spark
    statements, output, schema = _parser(load_id, policy)
    stage = f"{_staging_root(spark)}/{load_id}-{uuid.uuid4().hex[:12]}"
    with _readable(path, gz, scratch) as uri:
        lines = (
            spark.read.option("lineSep", "\n")
            .text(uri)
            .select(
                F.col("_metadata.file_block_start").alias("block"),
                F.col("value").cast("binary").alias("line"),
            )
        )
        offsets, first = {0: 1}, 1  # a gzip file is one block
        if not gz:
            for block, count in sorted((row[0], row[1]) for row in lines.groupBy("block").count().collect()):
                offsets[block], first = first, first + count
        parse_blocks = partial(_parse_blocks, statements, output, schema, offsets, limits.line_chunk_bytes())
        try:
            lines.mapInArrow(parse_blocks, _spark_schema(schema)).write.parquet(stage)
            return _write(con, spark.read.parquet(stage), load_id, str(path), sha256)
        finally:
            _remove(spark, stage)


def _parser(load_id: int, policy: RedactionPolicy) -> tuple[list[str], str, pa.Schema]:
    """The statements that parse a chunk (view `chunk_raw`) into `typed` and `bad_lines`, the
    query of every row the chunk gives (its `target` table, the union of the tables' columns, JSON
    as text), and that query's Arrow schema."""
    statements = parse.chunk_sql()
    select, schema = _output_shape(policy)
    return statements, f"select {select} from ({_union_sql(load_id, policy)})", schema


def _union_sql(load_id: int, policy: RedactionPolicy) -> str:
    valid = "(select * from typed where reason is null)"
    parts = [f"select '{t}' as target, * from ({sql})" for t, sql in (
        ("raw.spans", span_rows_sql(valid, load_id, "native", policy)),
        ("raw.metrics", metric_rows_sql(valid, load_id, policy)),
        ("raw.events", event_rows_sql(valid, load_id, policy)),
        (QUARANTINE, bad_records_sql("native", policy)),
    )]  # fmt: skip
    return " union all by name ".join(parts)


@lru_cache(maxsize=8)
def _output_shape(policy: RedactionPolicy) -> tuple[str, pa.Schema]:
    """The select list of the chunk's rows (JSON columns as text) and their Arrow schema, found
    once per process by parsing an empty chunk (a third of a second: once, not once per file)."""
    union = _union_sql(0, policy)
    with local_duckdb() as duck:
        duck.register(
            "chunk_raw",
            pa.table({"line_number": pa.array([], pa.int64()), "line": pa.array([], pa.binary())}),
        )
        for statement in parse.chunk_sql():
            duck.execute(statement)
        columns = duck.execute(f"describe {union}").fetchall()
        select = ", ".join(
            f'"{name}"::varchar as "{name}"' if kind == "JSON" else f'"{name}"' for name, kind, *_ in columns
        )
        schema = _plain_arrow(duck.sql(f"select {select} from ({union})").to_arrow_table()).schema
    return select, schema


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _parse_blocks(statements: list[str], output: str, schema: pa.Schema, offsets: dict[int, int], chunk_bytes: int,
                  batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """In an executor: the batches of (block, line) of its blocks, numbered, parsed in chunks of
    about `chunk_bytes`, as the rows of `output`. A content error gives one row, target FAILED."""
    import numpy as np

    seen: dict[int, int] = {}  # lines of each block numbered so far (a block's batches come in order)
    pending: list[pa.Table] = []
    size = 0
    with local_duckdb() as duck:
        # a Spark task has one core (spark.task.cpus); Spark runs one per core
        duck.execute("set threads = 1")
        try:
            for batch in batches:
                blocks = batch.column(0).to_numpy(zero_copy_only=False)
                numbers = np.empty(len(blocks), np.int64)
                starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]]) if len(blocks) else []
                for start, end in zip(starts, [*starts[1:], len(blocks)], strict=True):  # runs of one block
                    block = int(blocks[start])
                    done = seen.get(block, 0)
                    numbers[start:end] = offsets[block] + done + np.arange(end - start)
                    seen[block] = done + end - start
                pending.append(pa.table({"line_number": numbers, "line": batch.column(1)}))
                size += batch.nbytes
                if size >= chunk_bytes:
                    yield from _parse_chunk(duck, statements, output, schema, pa.concat_tables(pending))
                    pending, size = [], 0
            if pending:
                yield from _parse_chunk(duck, statements, output, schema, pa.concat_tables(pending))
        except parse.PARSE_ERRORS as exc:
            reason = parse.content_error_reason(exc)
            failed = {f.name: [None] for f in schema}
            failed.update(target=[FAILED], reason=[reason])
            yield pa.RecordBatch.from_pydict(failed, schema=schema)


def _parse_chunk(duck: duckdb.DuckDBPyConnection, statements: list[str], output: str, schema: pa.Schema,
                 chunk: pa.Table) -> Iterator[pa.RecordBatch]:  # fmt: skip
    duck.register("chunk_raw", chunk)
    for statement in statements:
        duck.execute(statement)
    yield from _plain_arrow(duck.sql(output).to_arrow_table()).cast(schema).to_batches()
    duck.unregister("chunk_raw")


def _write(con: SparkConnection, staged, load_id: int, file_path: str, sha256: str) -> WritePlan:
    """The staged rows of one file into the raw tables: per table, the rows with the file's keys
    replaced by the file's latest line of each key; the quarantine appended."""
    spark = con.spark
    plan = WritePlan()
    counts: dict[str, int] = {}
    for target, reason, count in staged.groupBy("target", "reason").count().collect():
        if target == FAILED:
            raise WholeFileRejected(reason)
        counts[target] = counts.get(target, 0) + count
        if target == QUARANTINE:
            plan.reasons[reason] = count
    plan.spans, plan.metrics, plan.events = (counts.get(t, 0) for t in TARGETS)
    plan.quarantined = counts.get(QUARANTINE, 0)
    view = f"agentmon_staged_{load_id}"
    staged.createOrReplaceTempView(view)
    try:
        for target in TARGETS:
            if not counts.get(target):
                continue
            rows = f"(select * from {view} where target = '{target}')"
            con.execute(f"delete from {target} t using {rows} n where {KEYS[target][1]}")
            columns = ", ".join(f"`{c}`" for c in spark.table(target).columns)
            latest = _spark_sql(
                f"select {columns} from (select *, {latest_sql(target)} as agentmon_latest from {rows}) "
                "where agentmon_latest = 1"
            )[0]
            spark.sql(latest).write.insertInto(target)
        if plan.quarantined:
            rows = f"(select * from {view} where target = '{QUARANTINE}')"
            con.execute(f"insert into {QUARANTINE} {quarantine_rows_sql(rows)}", [load_id, file_path, sha256])
    finally:
        spark.catalog.dropTempView(view)
    return plan


def _staging_root(spark) -> str:
    return spark.conf.get("spark.sql.warehouse.dir").rstrip("/") + "/_agentmon_incoming"


def _remove(spark, location: str) -> None:
    """Delete a folder on whatever file system Spark's tables are (Hadoop's API)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(location)
    hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)


_PLAIN_NAME = re.compile(r"^[\w.=/-]+$")
_CODECS = (".gz", ".bz2", ".deflate", ".zst", ".lz4", ".snappy", ".br", ".xz")


@contextmanager
def _readable(path: Path, gz: bool, scratch: Path) -> Iterator[str]:
    """A name Spark reads `path` by: its own, unless Spark would take it for a pattern (`*`,
    `[`...) or decompress it otherwise than its content says (Spark goes by the extension, the
    loader by the first bytes); then a link in `scratch` named as Spark needs."""
    name = str(path)
    if (
        _PLAIN_NAME.match(name)
        and path.name.lower().endswith(_CODECS) == gz
        and (not gz or name.endswith(".gz"))
    ):
        yield "file://" + name
        return
    scratch.mkdir(parents=True, exist_ok=True)
    link = scratch / f"agentmon-{uuid.uuid4().hex[:12]}.jsonl{'.gz' if gz else ''}"
    link.symlink_to(path)
    try:
        yield "file://" + str(link)
    finally:
        link.unlink(missing_ok=True)
