"""What is waiting in the landing folder, judged against the warehouse's ledger: for the ingest
asset and for the landing sensor (which keeps a cache of file hashes as its cursor). No Dagster
imports."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from agentmon_pipeline.config import Settings
from agentmon_pipeline.errors import UserError, WarehouseMissing
from agentmon_pipeline.ingest.detect import WholeFileRejected, is_gzip, read_head, sha256_of
from agentmon_pipeline.storage import connect


def settle_seconds() -> float:
    """A file modified more recently than this is still being written: it waits for the next tick."""
    return float(os.environ.get("MONITORING_SETTLE_SECONDS", "10"))


@dataclass(frozen=True)
class PendingFile:
    path: Path
    size: int
    mtime_ns: int
    refused: str | None = None  # why the file is not read (a symlink out of the landing folder)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def landing_entries(landing: Path) -> list[tuple[Path, os.stat_result, str | None]]:
    """Every file of the landing folder, with its lstat and, for a symlink, why it is refused.

    Nothing outside the landing folder is opened: the walk does not follow symlinks, a symlink
    that resolves outside the folder (or nowhere) is refused with its reason, and one that
    resolves inside is skipped (its target is listed where it is). Hidden names (writers'
    temporary files) are skipped."""
    root = landing.resolve()
    entries = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        linked_dirs = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        for name in sorted([*files, *linked_dirs]):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            st = path.lstat()
            refused = None
            if stat.S_ISLNK(st.st_mode):
                target = path.resolve()
                if _inside(target, root) and target.exists():
                    continue
                where = "nowhere" if not target.exists() else str(target)
                refused = f"symlink to {where}, outside the landing folder: not read"
            elif not stat.S_ISREG(st.st_mode):
                continue
            entries.append((path, st, refused))
    return entries


def settled_files(
    landing: Path, known: set[tuple[str, int, int]], settle_seconds: float
) -> tuple[list[PendingFile], int]:
    """Files not in `known` (path, size, mtime_ns) and not modified in the last `settle_seconds`.

    Returns them and the number of files still being written (they wait for the next tick).
    """
    found: list[PendingFile] = []
    waiting = 0
    if not landing.exists():
        return found, waiting
    now = time.time()
    for path, st, refused in landing_entries(landing):
        item = PendingFile(path, st.st_size, st.st_mtime_ns, refused)
        if (str(item.path), item.size, item.mtime_ns) in known:
            continue
        if refused is None and now - st.st_mtime < settle_seconds:
            waiting += 1
            continue
        found.append(item)
    return found, waiting


def unloaded_files(
    con: duckdb.DuckDBPyConnection, landing: Path, settle_seconds: float
) -> tuple[list[PendingFile], int]:
    """Settled files the ledger has not seen under the same path, size and mtime, and the number
    of files still being written (`settled_files`)."""
    return settled_files(landing, set(Ledger.read(con).files), settle_seconds)


def pending_files(con: duckdb.DuckDBPyConnection, landing: Path, settle_seconds: float) -> list[PendingFile]:
    """Settled files the ledger has not seen under the same path, size and mtime."""
    return unloaded_files(con, landing, settle_seconds)[0]


@dataclass(frozen=True)
class NewContent:
    path: Path
    sha256: str
    refused: bool = False
    size: int = 0
    mtime_ns: int = 0


@dataclass
class LandingScan:
    new: list[NewContent] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    waiting: int = 0

    def hashes(self) -> dict[str, list]:
        """The new files' hashes as the run's ingest takes them (path -> [size, mtime_ns, sha256]):
        what the sensor hashed is not hashed again."""
        return {
            str(item.path): [item.size, item.mtime_ns, item.sha256] for item in self.new if not item.refused
        }

    @property
    def run_key(self) -> str:
        """One key per set of new contents: the same files never start a second run."""
        return hashlib.sha256("\n".join(sorted(item.sha256 for item in self.new)).encode()).hexdigest()


@dataclass(frozen=True)
class Ledger:
    """What the warehouse has already seen: files by (path, size, mtime) and contents by sha256."""

    files: frozenset[tuple[str, int, int]] = frozenset()
    shas: frozenset[str] = frozenset()

    @classmethod
    def read(cls, con) -> Ledger:
        rows = con.execute("select file_path, bytes, mtime_ns, sha256 from raw.ingested_files").fetchall()
        return cls(frozenset((p, b, m) for p, b, m, _ in rows), frozenset(sha for *_, sha in rows))


def scan_landing(
    landing: Path, cursor: dict, settle_seconds: float, ledger: Ledger | None = None
) -> LandingScan:
    """Settled files whose content the warehouse has not loaded (by any command), nor this scan seen.

    The cursor is a cache, not the truth: it keeps each listed file's (size, mtime, sha256) so a
    file is hashed once; the ledger decides what is new. Files that left the folder leave the cursor.
    """
    ledger = ledger or Ledger()
    cached: dict[str, list] = dict(cursor.get("files", {}))
    found, waiting = settled_files(landing, set(ledger.files), settle_seconds)
    scan = LandingScan(waiting=waiting)
    listed: dict[str, list] = {}
    seen: set[str] = set()
    for item in found:
        key = str(item.path)
        if item.refused:  # never opened: a run records the refusal in the ledger
            listed[key] = [item.size, item.mtime_ns, None]
            scan.new.append(NewContent(item.path, f"refused:{item.path}:{item.mtime_ns}", refused=True))
            continue
        entry = cached.get(key)
        sha = (
            entry[2]
            if entry and entry[:2] == [item.size, item.mtime_ns] and entry[2]
            else sha256_of(item.path)
        )
        listed[key] = [item.size, item.mtime_ns, sha]
        if sha in ledger.shas or sha in seen:
            continue  # the same bytes were loaded under another name: nothing to load
        seen.add(sha)
        scan.new.append(NewContent(item.path, sha, size=item.size, mtime_ns=item.mtime_ns))
    scan.cursor = {"files": listed}
    return scan


def read_ledger(s: Settings, timeout: float = 1.0) -> Ledger:
    """The warehouse's ledger, read without creating a warehouse and without waiting long on a
    busy one (WarehouseBusy: a run is writing; ask again at the next tick)."""
    try:
        with connect(s, read_only=True, timeout=timeout) as con:
            return Ledger.read(con)
    except WarehouseMissing:
        return Ledger()


# the day of a file ---------------------------------------------------------------------------------
# Ingestion is partitioned by UTC day (a Dagster daily partition per day): a file belongs to the day
# its folder names (`dt=YYYY-MM-DD/`, as Hive-style exports write it), else to the day of its first
# record, else (no timestamp in its first line: a pretty-printed document, metrics without time) to
# the day it is ingested.

DAY_FOLDER = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")


def first_day() -> date:
    """The first daily partition (MONITORING_PARTITIONS_START, default 2020-01-01): older records
    belong to it."""
    text = os.environ.get("MONITORING_PARTITIONS_START", "2020-01-01")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"MONITORING_PARTITIONS_START={text!r}: expected a day such as 2024-01-01") from None


def today() -> date:
    return datetime.now(UTC).date()


def _day_of(value) -> date | None:
    """The UTC day of an RFC 3339 timestamp or of nanoseconds since the epoch (OTLP's)."""
    try:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return datetime.fromtimestamp(int(value) / 1e9, UTC).date()
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _first_record_day(record: dict) -> date | None:
    """The day of a native record (start_time, time, start_time_unix_nano), of the first span of an
    OTLP request, or of a Langfuse trace export (its timestamp)."""
    for key in ("start_time", "time", "start_time_unix_nano", "timestamp"):
        if key in record:
            return _day_of(record[key])
    try:
        span = record["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        return _day_of(span.get("startTimeUnixNano"))
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    trace = record.get("trace")
    return _day_of(trace.get("timestamp")) if isinstance(trace, dict) else None


def file_day(path: Path, landing: Path) -> date | None:
    """The day `path` says it is of: its `dt=YYYY-MM-DD` folder, else its first record's UTC day;
    None when it says neither (it is then today's). Reads at most the file's first 64 KiB."""
    try:
        folders = path.relative_to(landing).parts[:-1]
    except ValueError:
        folders = ()
    for folder in reversed(folders):
        match = DAY_FOLDER.fullmatch(folder)
        if match:
            try:
                return date.fromisoformat(match.group(1))
            except ValueError:
                return None
    try:
        head = read_head(path, is_gzip(path))
    except (OSError, WholeFileRejected):
        return None
    first = next((line for line in head.split(b"\n") if line.strip()), b"")
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        return None
    return _first_record_day(record) if isinstance(record, dict) else None


def partition_day(day: date | None, first: date, today: date) -> date:
    """The partition a file of `day` goes to: its own day, today's when it says none or a day
    after today, the first partition's when it is older than the partitions."""
    if day is None or day > today:
        return today
    return max(day, first)


def day_range(paths: list[Path], landing: Path, first: date, today: date) -> tuple[date, date]:
    """The partitions a run over these files covers: from the earliest file's day to the latest's
    (today's alone when there are none)."""
    days = [partition_day(file_day(path, landing), first, today) for path in paths] or [today]
    return min(days), max(days)
