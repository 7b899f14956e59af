"""One ingest pass over the landing folder, as the Dagster asset and `agentmon run` perform it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from agentmon_pipeline.config import Settings, load_config_file
from agentmon_pipeline.ingest.landing import (
    file_day,
    first_day,
    partition_day,
    pending_files,
    settle_seconds,
    today,
)
from agentmon_pipeline.ingest.loader import FileResult, ingest_file, record_refused
from agentmon_pipeline.ingest.prices import resolve_model
from agentmon_pipeline.ingest.redaction import RedactionPolicy, parse_redaction
from agentmon_pipeline.ingest.validation import SPAN_COLUMNS, SuiteResult, validate_batches
from agentmon_pipeline.storage.retention import outside_window

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    files: list[FileResult] = field(default_factory=list)
    outside_retention: int = 0  # records loaded now that are older than MONITORING_RETENTION_DAYS
    retention_days: int = 0

    @property
    def load_ids(self) -> list[int]:
        return [f.load_id for f in self.files if f.load_id is not None and f.status not in ("duplicate",)]

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    def log_lines(self) -> list[str]:
        lines = []
        for f in self.files:
            detail = f"{f.loaded} loaded, {f.quarantined} quarantined"
            if f.reason:
                detail += f" ({f.reason})"
            lines.append(f"{Path(f.path).name}: {f.status}, {detail}")
        if self.outside_retention:
            lines.append(self.retention_warning())
        return lines

    def retention_warning(self) -> str:
        return (f"{self.outside_retention} loaded record(s) are older than the retention window "
                f"(MONITORING_RETENTION_DAYS={self.retention_days}): the next prune (retention_daily, "
                "agentmon prune) deletes them; unset it to keep everything")  # fmt: skip

    def markdown(self) -> str:
        if not self.files:
            return "No new files in the landing folder."
        rows = ["| file | status | lines | loaded | quarantined | top reason |", "|---|---|---|---|---|---|"]
        for f in self.files[:50]:
            top = max(f.reasons, key=f.reasons.get) if f.reasons else (f.reason or "")
            rows.append(
                f"| {Path(f.path).name} | {f.status} | {f.lines} | {f.loaded} | {f.quarantined} | {top} |"
            )
        if len(self.files) > 50:
            rows.append(f"| … {len(self.files) - 50} more | | | | | |")
        return "\n".join(rows)


def redaction_policy(s: Settings) -> RedactionPolicy:
    """The redaction of agentmon.yaml (the built-in kinds when it says nothing)."""
    return parse_redaction(load_config_file(s).get("redaction"), s.config_file or "agentmon.yaml")


def ingest_landing(con: duckdb.DuckDBPyConnection, s: Settings, only: list[str] | None = None,
                   hashes: dict[str, list] | None = None, days: tuple[date, date] | None = None) -> BatchResult:  # fmt: skip
    """Ingest every settled file of the landing folder that the ledger has not seen. `hashes`
    (path -> [size, mtime_ns, sha256], the landing sensor's) spares hashing a file again when
    its size and mtime are still the ones hashed. `days` (first, last): only the files of those
    days (`landing.file_day`; a file that names no day is today's)."""
    batch = BatchResult()
    pending = pending_files(con, s.landing_dir, settle_seconds())
    if only:
        wanted = {str(Path(p).absolute()) for p in only} | {str(Path(p).resolve()) for p in only}
        pending = [p for p in pending if str(p.path) in wanted]
    if days is not None:
        first, last = days
        start, now = first_day(), today()
        pending = [p for p in pending
                   if p.refused or first <= partition_day(file_day(p.path, s.landing_dir), start, now) <= last]  # fmt: skip
    tmp_dir = s.home / "tmp"
    policy = redaction_policy(s)
    for item in pending:
        refused = item.refused
        if refused is None and item.path.is_symlink():  # replaced by a symlink since it was listed
            refused = f"symlink to {item.path.resolve()}, outside the landing folder: not read"
        if refused:
            batch.files.append(record_refused(con, item.path, item.size, item.mtime_ns, refused))
            continue
        known = (hashes or {}).get(str(item.path))
        sha = known[2] if known and list(known[:2]) == [item.size, item.mtime_ns] else None
        result = ingest_file(con, item.path, tmp_dir, policy, sha256=sha)
        batch.files.append(result)
        if s.archive_processed and result.status != "quarantined":
            target = s.processed_dir / item.path.relative_to(s.landing_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(item.path), target)
    batch.retention_days = s.retention_days
    batch.outside_retention = outside_window(con, batch.load_ids, s.retention_days)
    if batch.outside_retention:
        log.warning(batch.retention_warning())
    return batch


def validate_loads(con: duckdb.DuckDBPyConnection, load_ids: list[int]) -> list[SuiteResult]:
    """great-expectations over the rows these loads wrote (that are still current)."""
    ids = ",".join(str(i) for i in load_ids) or "null"
    frames = {
        "spans": con.execute(
            f"select {', '.join(SPAN_COLUMNS)} from raw.spans where load_id in ({ids})"
        ).df(),
        "metrics": con.execute(
            f"select name, value, time, metric_kind from raw.metrics where load_id in ({ids})"
        ).df(),
        "events": con.execute(f"select event_id, name, time from raw.events where load_id in ({ids})").df(),
    }
    return validate_batches(frames)


def price_overrides(s: Settings | None = None) -> set[str]:
    """Model names the dbt seed `model_price_overrides.csv` prices (they win over genai-prices)."""
    import csv

    from agentmon_pipeline.config import settings

    path = (s or settings()).dbt_project_dir / "seeds" / "model_price_overrides.csv"
    if not path.is_file():
        return set()
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["model"].strip() for row in csv.DictReader(handle) if row.get("model")}


def refresh_model_prices(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """Resolve every model name seen in spans that has no price row yet. Returns (resolved, unknown)."""
    models = [
        row[0]
        for row in con.execute(
            """
            select distinct s.model from raw.spans s
            where s.model is not null
              and not exists (select 1 from raw.model_prices p where p.model = s.model)
            order by 1
            """
        ).fetchall()
    ]
    resolved, unknown, rows = [], [], []
    overridden = price_overrides()
    for model in models:  # one lookup per distinct model name, not per record
        prices = resolve_model(model)
        if not prices:
            if model not in overridden:  # priced by the overrides seed: not unknown
                unknown.append(model)
            continue
        resolved.append(model)
        rows.extend(prices)
    if rows:
        frame = pd.DataFrame([asdict(r) for r in rows])
        con.register("new_prices", frame)
        con.execute(
            """
            insert into raw.model_prices
            select model, provider, matched_model_id, input_usd_per_mtok, cached_input_usd_per_mtok,
                   cache_write_usd_per_mtok, output_usd_per_mtok, effective_from, 'genai-prices', now()
            from new_prices
            """
        )
        con.unregister("new_prices")
    return resolved, unknown
