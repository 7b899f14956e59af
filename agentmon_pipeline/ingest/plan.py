"""The write plan: what one parsed file (`typed`, `bad_lines`, from `parse`) adds to the raw tables,
as queries on the parsing DuckDB. `storage.engines.write_raw` applies it to the warehouse, DuckDB or
PostgreSQL, in one transaction with the ledger's row."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from agentmon_pipeline.ingest import native
from agentmon_pipeline.ingest.parse import DOCUMENT_FORMATS, RTYPE
from agentmon_pipeline.ingest.redaction import RedactionPolicy, redact_text_sql
from agentmon_pipeline.storage.engines import Replace


@dataclass
class WritePlan:
    """The file's counts, and the rows to write: `replaces` (spans, metrics, events, each
    replacing earlier rows with its keys) and `appends` (the quarantine)."""

    spans: int = 0
    metrics: int = 0
    events: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    replaces: list[Replace] = field(default_factory=list)
    appends: list[tuple[str, str]] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.spans + self.metrics + self.events


def plan_writes(duck: duckdb.DuckDBPyConnection, fmt: str, fast: bool, load_id: int, path: str, sha256: str,
                policy: RedactionPolicy) -> WritePlan:  # fmt: skip
    """The plan for the records parsed from the file `path` (format `fmt`; `fast`: no key repeats
    within it), to be written under `load_id`."""
    plan = WritePlan()
    valid = "(select * from typed where reason is null)"
    bad_records = duck.sql(bad_records_sql(fmt, policy)).to_arrow_table()
    counts = duck.execute(
        f"""
        select count(*) filter (where {RTYPE} = 'span'), count(*) filter (where {RTYPE} = 'metric'),
               count(*) filter (where {RTYPE} = 'event')
        from typed where reason is null
        """
    ).fetchall()[0]  # fetchall: a half-read result would block the next statement
    plan.spans, plan.metrics, plan.events = map(int, counts)
    plan.quarantined = bad_records.num_rows
    # counted by DuckDB: pyarrow's group_by would import its dataset engine (and pandas) per run
    duck.register("bad_records", bad_records)
    plan.reasons = dict(duck.execute("select reason, count(*) from bad_records group by reason").fetchall())
    duck.execute(f"create or replace temp table new_quarantine as {quarantine_rows_sql('bad_records')}",
                 [load_id, path, sha256])  # fmt: skip
    duck.unregister("bad_records")
    plan.appends.append(("raw.quarantine", "select * from new_quarantine"))

    # Within a file the later line wins (ordinal); across files the later file wins (the rows with
    # the same key are deleted first).
    if plan.spans:
        rows = native.span_rows_sql(valid, load_id, fmt, policy)
        plan.replaces.append(Replace(
            "raw.spans",
            f"select * exclude (ordinal) from ({rows}) " + ("" if fast else f"qualify {latest_sql('raw.spans')} = 1"),
            f"select distinct trim(trace_id) as trace_id, trim(span_id) as span_id from typed "
            f"where reason is null and {RTYPE} = 'span'",
            KEYS["raw.spans"][1],
        ))  # fmt: skip
    if plan.metrics:
        duck.execute(
            f"create or replace temp table new_metrics as {native.metric_rows_sql(valid, load_id, policy)}"
        )
        plan.replaces.append(Replace(
            "raw.metrics", f"select * exclude (ordinal) from new_metrics qualify {latest_sql('raw.metrics')} = 1",
            "select distinct name, time, labels from new_metrics", KEYS["raw.metrics"][1],
        ))  # fmt: skip
    if plan.events:
        duck.execute(
            f"create or replace temp table new_events as {native.event_rows_sql(valid, load_id, policy)}"
        )
        plan.replaces.append(Replace(
            "raw.events", f"select * exclude (ordinal) from new_events qualify {latest_sql('raw.events')} = 1",
            "select distinct event_id from new_events", KEYS["raw.events"][1],
        ))  # fmt: skip
    return plan


# What identifies a row of each raw table: the key's columns (as SQL) and the comparison of a row
# `t` of the table with a key `n`, in SQL the engines share.
KEYS = {
    "raw.spans": ("trace_id, span_id", "t.trace_id = n.trace_id and t.span_id = n.span_id"),
    "raw.metrics": (
        "name, time, labels::varchar",
        "t.name = n.name and t.time = n.time and coalesce(t.labels::text, '') = coalesce(n.labels::text, '')",
    ),
    "raw.events": ("event_id", "t.event_id = n.event_id"),
}


def latest_sql(target: str) -> str:
    """A row's rank among the rows with its key, latest line first: the row to keep has rank 1."""
    return f"row_number() over (partition by {KEYS[target][0]} order by ordinal desc)"


def quarantine_rows_sql(source: str) -> str:
    """raw.quarantine's rows, in its column order, of the (line_number, reason, raw_line) of
    `source`; parameters: load_id, file_path, sha256."""
    return (f"select ?::bigint as load_id, ? as file_path, ? as sha256, line_number, reason, raw_line, "
            f"now() as quarantined_at from {source}")  # fmt: skip


def bad_records_sql(fmt: str, policy: RedactionPolicy) -> str:
    """The file's records and lines to quarantine (line_number, reason, raw_line), from `typed`
    and `bad_lines`, redacted. A record converted from another format is quarantined as it was in
    the file (`originals`), not converted."""
    bad_record_text, originals = (
        ("coalesce(originals.original, typed.j::varchar)", "left join originals using (ordinal)")
        if fmt in DOCUMENT_FORMATS
        else ("typed.j::varchar", "")
    )
    return f"""
        select typed.line_number, reason, {native.cap_sql(redact_text_sql(bad_record_text, policy))} as raw_line
        from typed {originals} where reason is not null
        union all
        select line_number, reason, {redact_text_sql("raw_line", policy)} from bad_lines
        """
