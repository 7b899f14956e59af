"""How much memory an ingest may use (MONITORING_INGEST_MEMORY), and the sizes read at once that
follow from it. Read per call, so that a test (or a long-lived process) sees the current setting."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from agentmon_pipeline.errors import UserError

DEFAULT_INGEST_MEMORY = "1GB"
# Converting OTLP or Langfuse documents builds JSON far larger than its input, in expressions that
# DuckDB cannot spill: a chunk of documents gets 1/128 of the memory limit (8 MB of lines at 1 GB;
# measured: 32 MB chunks fail at 1 GB, 4 MB ones at 256 MB).
CHUNK_SHARE = 128


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
        raise UserError(
            f"MONITORING_INGEST_MEMORY={text!r}: expected a size of at least 128MB, such as 512MB or 2GB"
        )
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
        duck.execute(f"set temp_directory = {sql_path(spill)}")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # a connection the error closed has nothing to restore
            duck.execute(f"set memory_limit = '{before}'")


def sql_path(path: Path) -> str:
    """`path` as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"
