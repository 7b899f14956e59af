"""Spark's ingestion of a native file, the part an executor runs (numbering, parsing in chunks, a
content error) and the name Spark reads a file by, without Spark. The whole path through Spark
is tested by the engine comparison (tests/test_spark.py), on files built to be awkward."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pyarrow as pa

from agentmon_pipeline.ingest.redaction import DEFAULT
from agentmon_pipeline.ingest.spark_reader import FAILED, QUARANTINE, _parse_blocks, _parser, _readable
from tests.ingest.test_loader import span


def _line(i: int, **fields) -> bytes:
    return json.dumps(span(span_id=f"s{i}", **fields)).encode()


def _batch(rows: list[tuple[int, bytes]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"block": [b for b, _ in rows], "line": [line for _, line in rows]},
                                      schema=pa.schema([("block", pa.int64()), ("line", pa.binary())]))  # fmt: skip


def _run(
    batches: list[pa.RecordBatch], offsets: dict[int, int], chunk_bytes: int = 1 << 20, extra: tuple = ()
):
    statements, output, schema = _parser(7, DEFAULT)
    out = list(_parse_blocks([*statements, *extra], output, schema, offsets, chunk_bytes, iter(batches)))
    return pl.from_arrow(pa.Table.from_batches(out, schema=schema))


def test_lines_are_numbered_across_batches_and_blocks():
    """A task's batches may end inside a block and hold the start of the next: each block's lines
    are numbered on from its first line number (the counts of the blocks before it)."""
    batches = [
        _batch([(0, _line(1)), (0, b"{not json")]),
        _batch([(0, b""), (4096, _line(4)), (4096, b"\xff bad")]),
        _batch([(4096, _line(6, name={"an": "object"})), (4096, _line(7))]),
    ]
    for chunk_bytes in (1, 1 << 20):  # a chunk per batch, or one for all: the same rows
        rows = _run(batches, {0: 1, 4096: 4}, chunk_bytes)
        spans = rows.filter(pl.col("target") == "raw.spans").sort("line_number")
        assert spans["span_id"].to_list() == ["s1", "s4", "s7"]
        assert spans["line_number"].to_list() == [1, 4, 7] and set(spans["load_id"]) == {7}
        bad = rows.filter(pl.col("target") == QUARANTINE).sort("line_number")
        assert list(zip(bad["line_number"], bad["reason"], strict=True)) == [
            (2, "not valid JSON"),
            (5, "not valid UTF-8"),
            (6, "name must be a string"),
        ]


def test_a_content_error_gives_one_failed_row_with_its_reason():
    rows = _run([_batch([(0, _line(1))])], {0: 1}, extra=("select cast('x' as integer)",))
    assert rows["target"].to_list() == [FAILED]
    assert rows["reason"][0].startswith("could not be ingested (ConversionException: ")


def test_spark_reads_a_file_by_its_name_unless_the_name_misleads_it(tmp_path):
    plain = tmp_path / "day=2026-11-01" / "spans-1.jsonl"
    plain.parent.mkdir()
    plain.write_bytes(_line(1))
    scratch = tmp_path / "scratch"
    with _readable(plain, False, scratch) as uri:
        assert uri == f"file://{plain}"
    cases = [
        (tmp_path / "spans [copy].jsonl", False, ".jsonl"),  # [ ] would be a pattern
        (tmp_path / "spans.jsonl", True, ".jsonl.gz"),  # gzip, named as plain text
        (tmp_path / "spans.jsonl.gz", False, ".jsonl"),  # plain text, named as gzip
    ]
    for path, gz, suffix in cases:
        path.write_bytes(gzip.compress(_line(1)) if gz else _line(1))
        with _readable(path, gz, scratch) as uri:
            link = Path(uri.removeprefix("file://"))
            assert link.parent == scratch and link.name.endswith(suffix) and link.resolve() == path
            assert link.read_bytes() == path.read_bytes()
        assert not link.exists()
