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
    document = _json_document(text, lines, whole=len(head) < HEAD_BYTES)
    if document:
        raise WholeFileRejected(document)
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


def _json_document(text: str, lines: list[str], whole: bool) -> str | None:
    """What a file holding one JSON document (an array, or an object spread over lines) that is
    not a format agentmon reads is, or None for JSON lines. A native line is an object on one
    line: it never starts with `[`, and a first line of `{` alone is a pretty-printed document
    (read as lines, every line of it was quarantined: 91 rows for one exported file)."""
    start = text.lstrip()[:1]
    if start != "[" and lines[0].strip() != "{":
        return None
    if start == "[" and len(lines) > 1 and _parses(lines[0]):
        return None  # JSON lines of arrays: no object in them, said below
    if whole:  # the whole file is in the head: say whether it is valid JSON at all
        try:
            json.loads(text)
        except (ValueError, RecursionError) as exc:
            return f"not a valid JSON document ({str(exc).splitlines()[0]}; truncated?)"
    what = "a JSON array, not JSON lines" if start == "[" else "a JSON document of no format agentmon reads"
    return f"{what}; agentmon reads {READ_FORMATS} (native: one JSON object per line)"


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True
