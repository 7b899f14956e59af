"""The whole pipeline on two warehouses, and the comparison of what each built: the PostgreSQL
and Spark tests run the same demo on DuckDB and on their engine, and find the same marts and
analytics, row for row."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
from datetime import datetime, timedelta
from pathlib import Path

from agentmon_pipeline.config import project_dir

AGENTS = """
agents:
  support-bot:
    name: Support Bot
    owner: support@example.com
    capabilities: [faq, refunds]
    active: "1.2"
    versions:
      "1.1": {config: {model: gpt-4o-mini}, deployed_at: 2026-11-01T00:00:00Z}
      "1.2": {config: {model: gpt-4o, tools: [search_kb]}, deployed_at: 2026-11-17T09:00:00Z}
"""


def run_in_process(home: Path, landing: Path, url: str | None, agents_file: Path) -> list[tuple[str, bool]]:
    """The whole pipeline in this process, less the benchmark suites (their runs bring ids and
    timings of their own) and retention; returns every check's name and outcome."""
    import dagster as dg

    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.home import ensure_home

    saved = dict(os.environ)  # ensure_home exports dbt's settings for the warehouse: put them back after
    try:
        os.environ.pop("MONITORING_DB_URL", None)
        os.environ.update({"AGENTMON_HOME": str(home), "MONITORING_LANDING_DIR": str(landing),
                           "MONITORING_SETTLE_SECONDS": "0", "AGENTMON_AGENTS_FILE": str(agents_file),
                           "AGENTMON_CONFIG": str(project_dir() / "examples" / "agentmon.yaml"),
                           **({"MONITORING_DB_URL": url} if url else {})})  # fmt: skip
        ensure_home()
        job = dg.define_asset_job(
            "compare", selection=dg.AssetSelection.all() - dg.AssetSelection.groups("evals", "maintenance")
        )
        resolved = dg.Definitions(assets=defs.assets, jobs=[job], resources=defs.resources).resolve_job_def(
            "compare"
        )
        result = resolved.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        assert result.success, [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        return sorted((e.event_specific_data.check_name, e.event_specific_data.passed)
                      for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sort_order(frame) -> list[str]:
    """The exact columns first, then the doubles: a double that differs in its last bit between the
    two warehouses must not reorder the rows."""
    return sorted(frame.columns, key=lambda name: (frame.schema[name].is_float(), name))


def _normalised(frame, order: list[str]):
    """Rows in one order, numbers as floats, lists and timestamps as text: comparable across warehouses."""
    import polars as pl

    casts = {}
    for name, dtype in frame.schema.items():
        if dtype.is_numeric():
            casts[name] = pl.col(name).cast(pl.Float64)
        elif isinstance(dtype, pl.List):
            casts[name] = pl.col(name).list.join("|")
        elif isinstance(dtype, pl.Datetime):
            casts[name] = pl.col(name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
    frame = frame.with_columns(**casts).select(order)
    return frame.sort(order, nulls_last=True)


def same_marts_and_analytics(duckdb_file: Path, other) -> dict[str, int]:
    """Every table of the marts and analytics in the DuckDB file, and its ledger and quarantine,
    equals the one `other` (a warehouse connection) has, row for row; returns each table's rows."""
    import duckdb
    from polars.testing import assert_frame_equal

    duck = duckdb.connect(str(duckdb_file), read_only=True)
    tables = duck.execute("select table_schema, table_name from information_schema.tables "
                          "where table_schema in ('marts', 'analytics') order by 1, 2").fetchall()  # fmt: skip
    assert len([t for t in tables if t[0] == "marts"]) == 13
    tables += [("raw", "ingested_files"), ("raw", "quarantine")]  # what each file gave, line by line
    compared = {}
    for schema, table in tables:
        left = duck.sql(f"select * from {schema}.{table}").pl()
        right = other.sql(f"select * from {schema}.{table}").pl()
        assert sorted(left.columns) == sorted(right.columns), f"{schema}.{table}: columns differ"
        # when each run computed or registered something: the clock's, not the data's
        moment = [c for c in left.columns if c.endswith(("computed_at", "detected_at", "generated_at", "ingested_at",
                                                         "quarantined_at", "registered_at", "updated_at"))]  # fmt: skip
        order = _sort_order(left.drop(moment))
        left, right = _normalised(left.drop(moment), order), _normalised(right.drop(moment), order)
        # marts: sums of the same doubles in another order, nothing more. Analytics: model fits
        # (exponential smoothing) stop at their optimiser's tolerance, so 1e-16 in becomes 1e-8 out.
        tolerance = 1e-9 if schema == "marts" else 1e-6
        try:
            assert_frame_equal(left, right, check_dtypes=False, rel_tol=tolerance, abs_tol=tolerance)
        except AssertionError as exc:
            raise AssertionError(f"{schema}.{table} differs: {exc}") from None
        compared[f"{schema}.{table}"] = left.height
    duck.close()
    return compared


def _join_day_files(landing: Path) -> None:
    """The demo's nine files of spans, one per day, joined into two (the second gzipped): the same
    records in the same order, so the same marts, for a third of Spark's fixed cost per file
    (about 1.1 s each: a sequence value, the ledger's lookup and row, the append)."""
    import gzip

    days = sorted(landing.glob("spans-*.jsonl*"))
    half = (len(days) + 1) // 2
    for name, part in (("spans-first-days.jsonl", days[:half]), ("spans-last-days.jsonl.gz", days[half:])):
        data = b"".join(
            gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in part
        )
        (landing / name).write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        for p in part:
            p.unlink()


def _span(day: datetime, i: int, **fields) -> bytes:
    start = day.replace(hour=3, minute=4, second=5)
    return json.dumps({
        "trace_id": f"awkward-t{i % 3}", "span_id": f"awkward-s{i}", "name": "llm.call", "kind": "llm",
        "start_time": start.isoformat(), "end_time": (start + timedelta(seconds=1.5)).isoformat(),
        "agent_id": "support-bot", "agent_version": "1.2", "model": "gpt-4o-mini", "input_tokens": 10 + i,
        "output_tokens": 5, **fields,
    }).encode()  # fmt: skip


def write_awkward_files(landing: Path, day: datetime, padding: int = 2500) -> None:
    """Two native files a warehouse must load exactly as DuckDB does: lines that are not JSON, not
    UTF-8, blank, CRLF-ended, or not valid records (quarantined with their line numbers); a span
    repeated within a file (the later line wins) and across files (the later file wins); a metric
    and an event. One is named as a pattern would be and is over 5 MB, its bad lines in several
    1 MB blocks (Spark's reader splits it); the other is gzip-compressed with no .gz in its name.
    Both are larger than the Spark test's 1 MB block, so Spark reads them itself."""
    body = b"\n".join([_span(day, 0), b"", b"{not json", _span(day, 1, cost_usd=0.5), b"\xff\xfe not utf-8",
                       _span(day, 1, cost_usd=0.75)]) + b"\n"  # fmt: skip
    metric = {"type": "metric", "name": "queue_depth", "value": 3, "time": day.replace(hour=3).isoformat(),
              "labels": {"agent_id": "support-bot"}}  # fmt: skip
    event = {
        "type": "event",
        "name": "deploy",
        "time": day.replace(hour=2).isoformat(),
        "agent_id": "support-bot",
    }
    tail = b"\n".join([_span(day, 2, name={"an": "object"}), _span(day, 3) + b"\r", json.dumps(metric).encode(),
                       json.dumps(event).encode(), b'{"trace_id": "x"}', _span(day, 0, output="replaced")]) + b"\n"  # fmt: skip
    padding_lines = (b" " * 1000 + b"\n") * padding
    (landing / "zz-awkward [copy].jsonl").write_bytes(body + padding_lines + tail + padding_lines + body)
    noise = base64.b64encode(
        random.Random(0).randbytes(1_200_000)
    )  # incompressible: the gzip file is over 1 MB
    (landing / "zz-awkward-gzipped.jsonl").write_bytes(
        gzip.compress(body + b"not JSON " + noise + b"\n" + tail, mtime=0)
    )


class Reference:
    """The demo both engine tests load: its landing folder and agents file, and DuckDB's run of
    it (the checks, the warehouse file)."""

    def __init__(self, root: Path):
        from agentmon_pipeline.devtools.demo import generate_demo
        from tests.conftest import DEMO_END

        self.landing, self.agents = root / "landing", root / "agents.yaml"
        self.agents.write_text(AGENTS)  # deployment times given: none from the clock
        # 9 days: the cost spike is 8 days before the end
        generate_demo(self.landing, days=9, agents=2, seed=11, end=DEMO_END)
        _join_day_files(self.landing)
        write_awkward_files(self.landing, DEMO_END - timedelta(days=2))
        self.checks = run_in_process(root / "duck", self.landing, None, self.agents)
        self.duckdb_file = root / "duck" / "warehouse.duckdb"
