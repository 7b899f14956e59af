"""Native JSONL ingestion: good and bad lines, whole-file rejects, the ledger, idempotency, atomicity."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.ingest import detect, limits, loader
from agentmon_pipeline.ingest.loader import ingest_file

T0 = "2026-11-01T10:00:00Z"


def span(**fields) -> dict:
    base = {
        "trace_id": "t1",
        "span_id": "s1",
        "name": "x",
        "start_time": T0,
        "end_time": "2026-11-01T10:00:01Z",
    }
    base.update(fields)
    return base


def write(path: Path, records: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def ledger(con) -> list[tuple]:
    return con.execute(
        "select status, lines, loaded, quarantined, reason from raw.ingested_files order by load_id"
    ).fetchall()


def test_good_file_loads_every_span_with_types(con, tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        [
            span(span_id="a", kind="AGENT", status="OK", agent_id="bot", agent_version="1.2"),
            span(span_id="b", parent_span_id="a", kind="llm", model="gpt-4o", input_tokens="1200",
                 output_tokens=30, cached_input_tokens=200, cost_usd=0.01, end_time=None, duration_ms=250),
        ],
    )  # fmt: skip
    result = ingest_file(con, path, tmp_path)
    assert (result.status, result.lines, result.loaded, result.quarantined) == ("loaded", 2, 2, 0)
    rows = con.execute(
        "select span_id, kind, status, input_tokens, output_tokens, cached_input_tokens, cost_usd, duration_ms "
        "from raw.spans order by span_id"
    ).fetchall()
    assert rows == [
        ("a", "agent", "ok", None, None, None, None, 1000.0),
        ("b", "llm", "unset", 1200, 30, 200, 0.01, 250.0),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps(span(trace_id=None)), "missing required field trace_id"),
        (json.dumps({"trace_id": "t", "span_id": "s", "name": "x", "end_time": T0}), "missing required field start_time (or start_time_unix_nano)"),
        (json.dumps(span(end_time=None)), "missing end_time, end_time_unix_nano or duration_ms (one is required)"),
        (json.dumps(span(start_time="yesterday")), "start_time is not an RFC 3339 timestamp"),
        (json.dumps(span(end_time="2026-11-01T09:00:00Z")), "end is before start"),
        (json.dumps(span(input_tokens=-5)), "input_tokens must be >= 0"),
        (json.dumps(span(input_tokens=1.5)), "input_tokens must be a whole number"),
        (json.dumps(span(output_tokens="many")), "output_tokens must be a whole number"),
        (json.dumps(span(cost_usd=-0.1)), "cost_usd must be >= 0"),
        (json.dumps(span(trace_id={"a": 1})), "trace_id must be a string"),
        (json.dumps(span(attributes=[1])), "attributes must be a JSON object"),
        (json.dumps(span(status="maybe")), "status must be one of ok, error, unset"),
        (json.dumps({"type": "trace", "name": "x"}), "type must be one of span, metric, event"),
        (json.dumps({"type": "metric", "name": "cpu", "time": T0}), "missing required field value"),
        (json.dumps({"type": "metric", "name": "cpu", "value": "high", "time": T0}), "value must be a number"),
        (json.dumps({"type": "event", "name": "feedback"}), "missing required field time"),
    ],
)  # fmt: skip
def test_bad_line_is_quarantined_with_reason_and_others_load(con, tmp_path, line, reason):
    path = write(tmp_path / "f.jsonl", [span(span_id="good1"), line, span(span_id="good2")])
    result = ingest_file(con, path, tmp_path)
    assert (result.status, result.lines, result.loaded, result.quarantined) == ("partial", 3, 2, 1)
    assert con.execute("select line_number, reason, raw_line from raw.quarantine").fetchall() == [
        (2, reason, line)
    ]
    assert con.execute("select count(*) from raw.spans").fetchone()[0] == 2


def test_lenient_where_a_user_would_be(con, tmp_path):
    path = write(
        tmp_path / "f.jsonl",
        [
            span(span_id="a", kind="Planner", status="ERROR", retry_count="2", extra_field={"k": 1},
                 attributes={"mine": True}),
            span(span_id="b", start_time=None, end_time=None, start_time_unix_nano=1761991200000000000,
                 end_time_unix_nano="1761991200500000000"),
        ],
    )  # fmt: skip
    ingest_file(con, path, tmp_path)
    a = con.execute(
        "select kind, status, retry_count, attributes from raw.spans where span_id = 'a'"
    ).fetchone()
    assert a[:3] == ("other", "error", 2)
    assert json.loads(a[3]) == {"extra_field": {"k": 1}, "mine": True, "agentmon.original_kind": "Planner"}
    b = con.execute("select start_time, duration_ms from raw.spans where span_id = 'b'").fetchone()
    assert b[0].isoformat() == "2025-11-01T10:00:00+00:00" and b[1] == 500.0


def test_blank_lines_are_ignored_and_line_numbers_kept(con, tmp_path):
    path = write(tmp_path / "f.jsonl", [span(span_id="a"), "", "   ", "{broken", span(span_id="b")])
    result = ingest_file(con, path, tmp_path)
    assert (result.lines, result.loaded, result.quarantined) == (3, 2, 1)
    assert con.execute("select line_number from raw.quarantine").fetchall() == [(4,)]


def test_metrics_and_events_in_one_file(con, tmp_path):
    path = write(
        tmp_path / "m.jsonl",
        [
            {"type": "metric", "name": "cpu", "value": 0.5, "time": T0, "labels": {"agent_id": "bot"}},
            {"type": "METRIC", "name": "mem", "value": "12", "time": T0, "metric_kind": "Counter"},
            {
                "type": "event",
                "name": "user_feedback",
                "time": T0,
                "agent_id": "bot",
                "attributes": {"score": 1},
            },
        ],
    )
    result = ingest_file(con, path, tmp_path)
    assert (result.metrics, result.events, result.quarantined) == (2, 1, 0)
    assert con.execute(
        "select name, value, metric_kind, agent_id from raw.metrics order by name"
    ).fetchall() == [
        ("cpu", 0.5, "gauge", "bot"),
        ("mem", 12.0, "counter", None),
    ]


def test_gzip_file_loads_like_plain(con, tmp_path):
    records = [span(span_id=f"s{i}", input_tokens=i) for i in range(50)] + ["oops"]
    result = ingest_file(con, write(tmp_path / "f.jsonl.gz", records, gz=True), tmp_path)
    assert (result.loaded, result.quarantined) == (50, 1)
    assert con.execute("select sum(input_tokens) from raw.spans").fetchone()[0] == sum(range(50))


def test_gzip_without_gz_suffix_is_detected_from_content(con, tmp_path):
    path = write(tmp_path / "f.jsonl", [span()], gz=True)
    assert ingest_file(con, path, tmp_path).loaded == 1


@pytest.mark.parametrize(
    ("content", "reason_part"),
    [
        (b"\x00\x01\x02binary\xff", "binary file"),
        # mtime=0: the same bytes in every run (the test id is built from them, and parallel
        # workers must collect the same tests)
        (gzip.compress(b'{"trace_id": "t"}\n' * 1000, mtime=0)[:60], "truncated or corrupt gzip"),
        (b"name,value\ncpu,1\n", "no JSON object"),
        (b"[1, 2, 3]\n[4]\n", "no JSON object"),
        # one JSON document over many lines, of no format agentmon reads: one reason for the
        # file, not a quarantined row for each of its lines
        (b'[\n  {"name": "span", "attributes": {}}\n]\n', "a JSON array, not JSON lines"),
        (b'{\n  "spans": [\n    {"name": "x"}\n  ]\n}\n', "a JSON document of no format agentmon reads"),
        (b'{\n  "trace": {\n    "id": "t1",\n', "not a valid JSON document"),
    ],
    ids=[
        "binary",
        "truncated-gzip",
        "csv",
        "json-arrays",
        "json-array-document",
        "json-document",
        "cut-document",
    ],
)
def test_unreadable_file_is_quarantined_whole(con, tmp_path, content, reason_part):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    result = ingest_file(con, path, tmp_path)
    assert result.status == "quarantined" and reason_part in result.reason
    if "gzip" not in reason_part and "valid JSON" not in reason_part:
        assert "native JSONL" in result.reason  # a format we do not read: the reason names those we do
    status, lines, loaded, quarantined, _ = ledger(con)[0]
    assert (status, lines, loaded, quarantined) == ("quarantined", 1, 0, 1)
    row = con.execute("select line_number, reason from raw.quarantine").fetchone()
    assert row[0] is None and reason_part in row[1]


def test_same_bytes_under_another_name_add_nothing(con, tmp_path):
    records = [span(span_id="a", input_tokens=10), span(span_id="b", input_tokens=5)]
    ingest_file(con, write(tmp_path / "one.jsonl", records), tmp_path)
    second = ingest_file(con, write(tmp_path / "copy.jsonl", records), tmp_path)
    assert second.status == "duplicate" and second.duplicate_of == 1
    assert con.execute("select count(*), sum(input_tokens) from raw.spans").fetchone() == (2, 15)
    assert [row[0] for row in ledger(con)] == ["loaded", "duplicate"]


def test_span_seen_again_is_not_counted_twice_latest_wins(con, tmp_path):
    ingest_file(con, write(tmp_path / "1.jsonl", [span(span_id="a", output_tokens=1)]), tmp_path)
    ingest_file(con, write(tmp_path / "2.jsonl.gz", [span(span_id="a", output_tokens=7)], gz=True), tmp_path)
    ingest_file(con, write(tmp_path / "3.jsonl", [span(span_id="c", output_tokens=1), span(span_id="c", output_tokens=3)]), tmp_path)  # fmt: skip
    assert con.execute("select span_id, output_tokens from raw.spans order by 1").fetchall() == [
        ("a", 7),
        ("c", 3),
    ]


def test_long_text_is_capped_with_a_marker(con, tmp_path):
    big = "é" * 70_000
    ingest_file(con, write(tmp_path / "f.jsonl", [span(input=big, output={"answer": "short"})]), tmp_path)
    text, output = con.execute("select input, output from raw.spans").fetchone()
    assert len(text.encode()) <= 64 * 1024 and text.endswith("[truncated by agentmon]")
    assert json.loads(output) == {"answer": "short"}

    attrs = {"prompt": big, "n": 1, "nested": {"k": "v"}}
    ingest_file(con, write(tmp_path / "g.jsonl", [span(span_id="b", attributes=attrs)]), tmp_path)
    a = json.loads(con.execute("select attributes from raw.spans where span_id = 'b'").fetchone()[0])
    assert len(a["prompt"].encode()) <= 64 * 1024 and a["prompt"].endswith("[truncated by agentmon]")
    assert (a["n"], a["nested"]) == (1, {"k": "v"})


def test_crash_halfway_leaves_the_warehouse_as_before(tmp_path, monkeypatch):
    db = duckdb.connect(str(tmp_path / "w.duckdb"))
    from agentmon_pipeline.storage import migrate

    migrate(db)
    ingest_file(db, write(tmp_path / "first.jsonl", [span(span_id="keep")]), tmp_path)
    before = (ledger(db), db.execute("select count(*) from raw.spans").fetchone())

    real = loader._ledger_row

    def crash(*args, **kwargs):  # after spans and quarantine rows were written, before commit
        raise RuntimeError("power cut")

    monkeypatch.setattr(loader, "_ledger_row", crash)
    with pytest.raises(RuntimeError):
        ingest_file(db, write(tmp_path / "second.jsonl", [span(span_id="new"), "bad line"]), tmp_path)
    monkeypatch.setattr(loader, "_ledger_row", real)
    assert (ledger(db), db.execute("select count(*) from raw.spans").fetchone()) == before
    assert db.execute("select count(*) from raw.quarantine").fetchone()[0] == 0
    # and the file loads fine on the next attempt
    assert ingest_file(db, tmp_path / "second.jsonl", tmp_path).loaded == 1


def test_fast_and_slow_paths_give_the_same_rows(con, tmp_path):
    """A clean file takes the fast path; the same records with one bad line take the slow path."""
    records = [
        span(span_id=f"s{i}", kind="llm", input_tokens=i, attributes={"i": i}, extra=i) for i in range(20)
    ]
    ingest_file(con, write(tmp_path / "clean.jsonl", records), tmp_path)
    fast = con.execute("select * exclude (load_id, line_number) from raw.spans order by span_id").fetchall()
    con.execute("delete from raw.spans")
    ingest_file(con, write(tmp_path / "dirty.jsonl", [*records, "bad"]), tmp_path)
    slow = con.execute("select * exclude (load_id, line_number) from raw.spans order by span_id").fetchall()
    assert fast == slow


def test_strict_and_lenient_mapping_agree(con, tmp_path):
    """Files without unknown keys take a strict cast; a file with one takes json_transform."""
    records = [
        span(span_id="a", kind="llm", input_tokens="12", output_tokens=12.0, cost_usd=1, agent_id=7,
             input={"q": [1, 2]}, output="plain", status="Error", attributes={"x": {"y": 1}}),
        span(span_id="b", end_time=None, duration_ms="2.5", agent_version=True, retry_count=0),
    ]  # fmt: skip
    cols = "select * exclude (load_id, line_number, attributes), attributes from raw.spans order by span_id"
    ingest_file(con, write(tmp_path / "strict.jsonl", records), tmp_path)
    strict = con.execute(cols).fetchall()
    con.execute("delete from raw.spans")
    ingest_file(con, write(tmp_path / "lenient.jsonl", [{**r, "zz_unknown": 1} for r in records]), tmp_path)
    lenient = con.execute(cols).fetchall()
    assert [r[:-1] for r in strict] == [r[:-1] for r in lenient]
    assert [json.loads(r[-1] or "{}") | {"zz_unknown": 1} for r in strict] == [
        json.loads(r[-1]) for r in lenient
    ]


def test_retention_prunes_raw_detail_older_than_the_window(con, tmp_path):
    from datetime import UTC, datetime, timedelta

    from agentmon_pipeline.storage.retention import prune

    def iso(days_ago: float) -> str:
        return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()

    write(
        tmp_path / "f.jsonl",
        [
            span(span_id="old", start_time=iso(40), end_time=iso(40)),
            span(span_id="new", start_time=iso(2), end_time=iso(2)),
            {"type": "metric", "name": "cpu", "value": 1, "time": iso(31)},
            {"type": "event", "name": "deploy", "time": iso(29)},
        ],
    )
    ingest_file(con, tmp_path / "f.jsonl", tmp_path)  # ingesting prunes nothing
    assert con.execute("select count(*) from raw.spans").fetchone()[0] == 2
    assert prune(con, 0) == {}  # 0 disables
    assert prune(con, 30) == {"raw.spans": 1, "raw.metrics": 1, "raw.events": 0}
    assert con.execute("select span_id from raw.spans").fetchall() == [("new",)]
    assert con.execute("select count(*) from raw.events").fetchone()[0] == 1
    # the ledger says what went: per file (its lines still = loaded + quarantined) and per pass
    assert con.execute("select loaded, pruned, pruned_at is not null from raw.ingested_files").fetchall() == [
        (4, 2, True)
    ]
    assert dict(
        con.execute(
            "select table_name, rows_removed from raw.retention_log where table_name like 'raw.%'"
        ).fetchall()
    ) == {"raw.spans": 1, "raw.metrics": 1, "raw.events": 0}


def test_ingestion_says_how_many_records_are_already_outside_the_retention_window(home, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from agentmon_pipeline.config import settings
    from agentmon_pipeline.ingest.batch import ingest_landing
    from agentmon_pipeline.storage import connect

    def iso(days_ago: float) -> str:
        return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()

    monkeypatch.setenv("MONITORING_RETENTION_DAYS", "30")
    s = settings()
    write(s.landing_dir / "history.jsonl", [span(span_id=f"s{i}", start_time=iso(d), end_time=iso(d))
                                             for i, d in enumerate((400, 45, 31, 2))])  # fmt: skip
    with connect(s) as con:
        batch = ingest_landing(con, s)
        assert (
            con.execute("select count(*) from raw.spans").fetchone()[0] == 4
        )  # loaded, not pruned on arrival
    assert batch.outside_retention == 3
    assert (
        "3 loaded record(s) are older than the retention window (MONITORING_RETENTION_DAYS=30)"
        in batch.log_lines()[-1]
    )
    monkeypatch.setenv("MONITORING_RETENTION_DAYS", "0")  # the default: nothing is outside
    write(s.landing_dir / "more.jsonl", [span(span_id="x", start_time=iso(400), end_time=iso(400))])
    with connect(settings()) as con:
        assert ingest_landing(con, settings()).outside_retention == 0


def test_warehouse_records_its_schema_version_and_migrates_once(tmp_path):
    from agentmon_pipeline.storage import SCHEMA_VERSION, migrate, schema_version

    db = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert schema_version(db) == 0
    assert migrate(db) == SCHEMA_VERSION == schema_version(db)
    migrate(db)  # a second start changes nothing
    assert db.execute("select count(*) from raw.schema_version").fetchone()[0] == SCHEMA_VERSION
    schemas = {r[0] for r in db.execute("select schema_name from information_schema.schemata").fetchall()}
    assert {"raw", "staging", "intermediate", "marts", "evals", "analytics", "alerts", "registry"} <= schemas


@pytest.mark.parametrize("where", [1, 700])  # in the head that detects the format, and past it
def test_a_line_that_is_not_utf8_is_quarantined_and_the_others_load(con, tmp_path, where):
    """The line alone is quarantined, its bytes shown escaped; the file's other lines load."""
    path = tmp_path / "mixed.jsonl"
    good = [json.dumps(span(span_id=f"s{i}", attributes={"pad": "x" * 100})).encode() for i in range(800)]
    bad = b'{"trace_id": "t1", "span_id": "\xff\xfe"}'
    path.write_bytes(b"\n".join([*good[:where], bad, *good[where:]]) + b"\n")
    assert path.stat().st_size > detect.HEAD_BYTES
    result = ingest_file(con, path, tmp_path)
    assert (result.lines, result.loaded, result.quarantined) == (801, 800, 1)
    line, reason, raw = con.execute("select line_number, reason, raw_line from raw.quarantine").fetchone()
    assert (line, reason) == (where + 1, "not valid UTF-8") and "span_id" in raw and "\\xFF" in raw


def test_a_file_larger_than_the_memory_limit_loads_whole(con, tmp_path, monkeypatch):
    """MONITORING_INGEST_MEMORY=128MB and a 150 MB file with one bad line (the chunked path, which
    numbers lines): every record loaded or quarantined, none lost; the spill stays under tmp."""
    from agentmon_pipeline.devtools.bench import write_spans

    monkeypatch.setenv("MONITORING_INGEST_MEMORY", "128MB")
    path = tmp_path / "big.jsonl"
    write_spans(path, 420_000)
    with path.open("ab") as f:
        f.write(b"not json\n")
    assert path.stat().st_size > 128 * 1000**2
    result = ingest_file(con, path, tmp_path / "tmp")
    assert (result.lines, result.loaded, result.quarantined) == (420_001, 420_000, 1)
    assert con.execute("select count(*), count(distinct span_id) from raw.spans").fetchone() == (
        420_000,
        420_000,
    )
    assert con.execute("select current_setting('memory_limit')").fetchone()[0] != "122.0 MiB"  # restored


@pytest.mark.parametrize("value", ["lots", "12", "64MB", "-1GB"])
def test_an_unusable_memory_setting_is_one_clear_line(con, tmp_path, monkeypatch, value):
    from agentmon_pipeline.errors import UserError

    monkeypatch.setenv("MONITORING_INGEST_MEMORY", value)
    with pytest.raises(UserError, match=r"MONITORING_INGEST_MEMORY=.*at least 128MB"):
        ingest_file(con, write(tmp_path / "a.jsonl", [span()]), tmp_path)
    assert con.execute("select count(*) from raw.ingested_files").fetchone()[0] == 0


def test_running_out_of_memory_names_the_setting_and_keeps_the_file(con, tmp_path, monkeypatch):
    """Out of memory is the machine's limit, not the file's fault: not quarantined, the run
    stops with what to change, and the file loads once there is room."""
    from agentmon_pipeline.devtools.bench import write_spans
    from agentmon_pipeline.errors import UserError

    path = tmp_path / "spans.jsonl"
    write_spans(path, 50_000)
    monkeypatch.setattr(limits, "ingest_memory", lambda: 4 * 1000**2)
    with pytest.raises(
        UserError, match="spans.jsonl: ingesting it needs more memory than MONITORING_INGEST_MEMORY"
    ):
        ingest_file(con, path, tmp_path)
    assert con.execute("select count(*) from raw.ingested_files").fetchone()[0] == 0
    monkeypatch.undo()
    assert ingest_file(con, path, tmp_path).loaded == 50_000
