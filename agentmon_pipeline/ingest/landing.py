"""What is waiting in the landing folder: for the ingest asset (against the ledger) and for the
landing sensor (against its cursor). No Dagster imports."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from agentmon_pipeline.ingest.loader import sha256_of


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


def pending_files(con: duckdb.DuckDBPyConnection, landing: Path, settle_seconds: float) -> list[PendingFile]:
    """Settled files the ledger has not seen under the same path, size and mtime."""
    known = {
        (p, b, m)
        for p, b, m in con.execute("select file_path, bytes, mtime_ns from raw.ingested_files").fetchall()
    }
    return settled_files(landing, known, settle_seconds)[0]


@dataclass(frozen=True)
class NewContent:
    path: Path
    sha256: str
    refused: bool = False


@dataclass
class LandingScan:
    new: list[NewContent] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    waiting: int = 0


def scan_landing(landing: Path, cursor: dict, settle_seconds: float) -> LandingScan:
    """New file contents since the sensor's cursor; each new file is hashed once.

    The cursor keeps every listed file's (size, mtime) so old files are not hashed again, and every
    content hash seen so that the same bytes under another name start no run.
    """
    files: dict[str, list[int]] = dict(cursor.get("files", {}))
    seen: set[str] = set(cursor.get("shas", []))
    known = {(path, size, mtime) for path, (size, mtime) in files.items()}
    found, waiting = settled_files(landing, known, settle_seconds)
    scan = LandingScan(waiting=waiting)
    for item in found:
        files[str(item.path)] = [item.size, item.mtime_ns]
        if item.refused:  # never opened: a run records the refusal in the ledger
            scan.new.append(NewContent(item.path, f"refused:{item.path}:{item.mtime_ns}", refused=True))
            continue
        sha = sha256_of(item.path)
        if sha in seen:
            continue
        seen.add(sha)
        scan.new.append(NewContent(item.path, sha))
    scan.cursor = {"files": files, "shas": sorted(seen)}
    return scan
