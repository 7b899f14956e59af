"""What the landing sensor sees: new file contents since its cursor. No Dagster imports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from agentmon_pipeline.ingest.loader import sha256_of


@dataclass(frozen=True)
class NewContent:
    path: Path
    sha256: str


@dataclass
class LandingScan:
    new: list[NewContent] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    waiting: int = 0


def scan_landing(landing: Path, cursor: dict, settle_seconds: float) -> LandingScan:
    """Files not listed in the cursor (by path, size and mtime) and settled; content hashed once.

    The cursor keeps every listed file's (size, mtime) so old files are not hashed again, and every
    content hash seen so that the same bytes under another name start no run.
    """
    files: dict[str, list[int]] = dict(cursor.get("files", {}))
    seen: set[str] = set(cursor.get("shas", []))
    scan = LandingScan()
    now = time.time()
    if landing.exists():
        for entry in sorted(landing.rglob("*")):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            st = entry.stat()
            key = str(entry.resolve())
            if files.get(key) == [st.st_size, st.st_mtime_ns]:
                continue
            if now - st.st_mtime < settle_seconds:
                scan.waiting += 1
                continue
            sha = sha256_of(entry)
            files[key] = [st.st_size, st.st_mtime_ns]
            if sha in seen:
                continue
            seen.add(sha)
            scan.new.append(NewContent(entry.resolve(), sha))
    scan.cursor = {"files": files, "shas": sorted(seen)}
    return scan
