"""Detect: what a landing file is, from its first bytes, before anything parses it."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024
READ_FORMATS = (
    "native JSONL (spans, metrics, events), OpenTelemetry OTLP JSON traces and Langfuse trace exports"
)


class WholeFileRejected(Exception):
    """The file cannot be read at all; it is quarantined as a whole with this reason."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def read_head(path: Path, gz: bool) -> bytes:
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
