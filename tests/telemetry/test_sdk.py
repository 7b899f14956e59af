"""The telemetry SDK without Dagster: records, traces, metrics, exporters, and the promises an
instrumented agent relies on (never raises, never blocks, overflow counted)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from agentmon_sdk import (
    EventEmitter,
    JsonlExporter,
    MetricsRegistry,
    PerformanceMonitor,
    PrometheusExporter,
    TelemetryCollector,
    WebhookExporter,
)
from agentmon_sdk.webhooks import SIGNATURE_HEADER, signature


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines()]


class ListExporter:
    def __init__(self):
        self.records: list[dict] = []

    def export(self, records):
        self.records.extend(records)

    def tick(self):
        pass

    def close(self):
        pass


def test_seed_example_records_and_exports_to_a_folder(tmp_path):
    collector = TelemetryCollector(performance=False)
    collector.start()
    collector.record_agent_execution(agent_id="agent_1", duration_ms=250, success=True, tokens_used=150)
    path = collector.export_to_file(tmp_path / "output")
    collector.stop()
    run, usage = [json.loads(line) for line in path.read_text().splitlines() if '"kind"' in line]
    assert (run["kind"], run["agent_id"], run["duration_ms"], run["status"]) == (
        "agent",
        "agent_1",
        250,
        "ok",
    )
    # tokens of a run live on an llm span under it: that is where the marts count them
    assert (usage["kind"], usage["total_tokens"], usage["parent_span_id"]) == ("llm", 150, run["span_id"])
    assert usage["trace_id"] == run["trace_id"] and len(run["trace_id"]) == 32 and len(run["span_id"]) == 16
    assert path.parent == tmp_path / "output" and not path.name.startswith(".")


def test_nested_spans_share_the_trace_and_errors_are_marked_and_reraised():
    sink = ListExporter()
    collector = TelemetryCollector(exporters=[sink], performance=False)
    with (
        pytest.raises(ValueError, match="no such order"),
        collector.trace("answer", agent_id="support-bot", agent_version="1.2", session_id="s1") as run,
    ):
        collector.record_llm_call(
            "gpt-4o", input_tokens=812, output_tokens=96, duration_ms=640, provider="openai"
        )
        with collector.span("lookup_order", kind="tool", tool_name="lookup_order") as tool:
            tool.set(input={"order": 42})
            raise ValueError("no such order")
    collector.record_tool_call("outside", duration_ms=3)  # no trace open: a trace of its own
    collector.flush()
    by_name = {r["name"]: r for r in sink.records}
    agent, llm, tool_rec = by_name["answer"], by_name["gpt-4o"], by_name["lookup_order"]
    assert {agent["trace_id"], llm["trace_id"], tool_rec["trace_id"]} == {run.trace_id}
    assert llm["parent_span_id"] == tool_rec["parent_span_id"] == agent["span_id"]
    assert "parent_span_id" not in agent
    assert (tool_rec["status"], tool_rec["error_type"], tool_rec["error_message"]) == (
        "error",
        "ValueError",
        "no such order",
    )
    assert (agent["status"], agent["error_type"]) == ("error", "ValueError")  # it went through the run too
    assert tool_rec["agent_id"] == "support-bot" and tool_rec["session_id"] == "s1"  # inherited
    assert agent["end_time_unix_nano"] >= tool_rec["end_time_unix_nano"] >= tool_rec["start_time_unix_nano"]
    assert by_name["outside"]["trace_id"] != run.trace_id


def test_without_exporters_records_wait_for_export_to_file(tmp_path):
    collector = TelemetryCollector(performance=False).start()
    for i in range(5):
        collector.record_llm_call("m", input_tokens=i, output_tokens=1, duration_ms=1)
    time.sleep(0.05)
    assert collector.stats["queued"] >= 5
    target = tmp_path / "calls.jsonl"
    assert collector.export_to_file(target) == target
    assert [r["input_tokens"] for r in _records(tmp_path) if r.get("kind") == "llm"] == [0, 1, 2, 3, 4]
    collector.stop()
    assert collector.export_to_file(tmp_path / "again.jsonl") is None or collector.stats["queued"] == 0


def test_a_full_queue_drops_and_counts_never_blocks(caplog):
    sink = ListExporter()
    collector = TelemetryCollector(exporters=[sink], max_queue=10, performance=False)
    for _ in range(25):
        collector.record_tool_call("t", duration_ms=1)
    assert collector.stats["dropped"] == 15
    with caplog.at_level(logging.WARNING, logger="agentmon.telemetry"):
        collector.flush(final=True)
    assert "15 records dropped" in caplog.text
    assert sum(1 for r in sink.records if r.get("kind") == "tool") == 10
    dropped = [r for r in sink.records if r.get("name") == "agentmon_sdk_dropped_records_total"]
    collector.flush(final=True)  # the counter shows in the next snapshot
    dropped = [r for r in sink.records if r.get("name") == "agentmon_sdk_dropped_records_total"]
    assert dropped[-1]["value"] == 15 and dropped[-1]["metric_kind"] == "counter"


def test_nothing_raises_into_the_agent(tmp_path, caplog):
    class Broken:
        def export(self, records):
            raise OSError("disk full")

        def tick(self):
            raise RuntimeError("tick")

        def close(self):
            raise RuntimeError("close")

    sink = ListExporter()
    events = EventEmitter()
    events.on("llm_call", lambda name, data: 1 / 0)
    collector = TelemetryCollector(exporters=[Broken(), sink], emitter=events, performance=False)
    counter = collector.metrics.counter("tasks_total", labels=["agent_id"])
    counter.inc(agent="typo")  # wrong label name: counted, not raised
    collector.record_llm_call("m", input_tokens=1, output_tokens=1, input=object())  # not JSON: kept as text
    collector.record_metric("satisfaction", 4.5, labels={"agent_id": "a"})
    with caplog.at_level(logging.WARNING, logger="agentmon.telemetry"):
        collector.flush()
        collector.stop()
    stats = collector.stats
    assert stats["export_errors"] >= 2 and stats["failed_exports"] >= 2
    assert stats["handler_errors"] == 1 and stats["metric_errors"] == 1
    assert "disk full" in caplog.text
    assert any(r.get("kind") == "llm" for r in sink.records)  # the other exporter still got them
    assert any(r.get("name") == "satisfaction" and r["value"] == 4.5 for r in sink.records)


def test_event_handlers_see_records_from_the_background():
    seen = []
    collector = TelemetryCollector(exporters=[ListExporter()], performance=False)
    collector.events.on("tool_call", lambda name, data: seen.append((name, data["tool_name"])))
    collector.events.on("error", lambda name, data: seen.append((name, data["name"])))
    collector.record_tool_call("search", duration_ms=2)
    collector.record_tool_call("fetch", duration_ms=2, success=False, error_type="Timeout")
    collector.record_event("user_feedback", {"score": 1}, agent_id="bot")
    assert seen == []  # nothing runs on the agent's thread
    collector.flush()
    assert seen == [("tool_call", "search"), ("tool_call", "fetch"), ("error", "fetch")]


def test_jsonl_files_appear_whole_rotated_by_size_and_age(tmp_path):
    exporter = JsonlExporter(tmp_path, rotate_bytes=1000, rotate_seconds=3600)  # about 700 bytes a batch
    rows = [{"trace_id": "t", "span_id": str(i), "name": "x" * 50} for i in range(60)]
    for start in range(0, 60, 10):
        exporter.export(rows[start : start + 10])
        visible = sorted(tmp_path.glob("*.jsonl"))
        hidden = sorted(tmp_path.glob(".*.part"))
        # whatever is visible is complete JSON lines; the open file is hidden from the sensor
        assert all(json.loads(line) for f in visible for line in f.read_text().splitlines())
        assert len(hidden) <= 1
    exporter.close()
    assert len(exporter.files) >= 3 and not list(tmp_path.glob(".*.part"))
    assert sorted(int(r["span_id"]) for r in _records(tmp_path)) == list(range(60))
    aged = JsonlExporter(tmp_path / "aged", rotate_seconds=0.01)
    aged.export(rows[:1])
    time.sleep(0.02)
    aged.tick()
    assert len(aged.files) == 1


def test_the_landing_sensor_skips_files_being_written(tmp_path):
    from agentmon_pipeline.ingest.landing import settled_files

    exporter = JsonlExporter(tmp_path)
    exporter.export([{"trace_id": "t", "span_id": "s", "name": "x"}])
    assert settled_files(tmp_path, set(), settle_seconds=0)[0] == []
    exporter.close()
    assert [f.path.name for f in settled_files(tmp_path, set(), settle_seconds=0)[0]] == [
        exporter.files[0].name
    ]


def test_metrics_registry_types_and_quantiles():
    registry = MetricsRegistry()
    requests = registry.counter("requests_total", "requests", ["agent_id"])
    requests.inc(agent_id="a")
    requests.inc(2, agent_id="a")
    requests.inc(-5, agent_id="a")  # counters only go up
    assert requests.value(agent_id="a") == 3
    depth = registry.gauge("queue_depth")
    depth.set(5)
    depth.dec(2)
    assert depth.value() == 3
    latency = registry.histogram("latency_ms", buckets=(10, 100))
    for v in (5, 50, 500, 7):
        latency.observe(v)
    samples = {(n, tuple(sorted(lab.items()))): v for n, lab, v in latency.samples()}
    assert samples[("latency_ms_bucket", (("le", "10"),))] == 2
    assert samples[("latency_ms_bucket", (("le", "100"),))] == 3
    assert samples[("latency_ms_bucket", (("le", "+Inf"),))] == 4 and samples[("latency_ms_sum", ())] == 562
    summary = registry.summary("tokens")
    values = np.random.default_rng(1).lognormal(5, 1, 1000)
    for v in values:
        summary.observe(float(v))
    assert summary.quantile(0.95) == pytest.approx(np.percentile(values, 95))  # all 1000 fit the reservoir
    assert registry.counter("requests_total", labels=["agent_id"]) is requests
    with pytest.raises(ValueError, match="is a Counter, not a Gauge"):
        registry.gauge("requests_total")
    kinds = {r["name"]: r["metric_kind"] for r in registry.collect("2026-11-01T00:00:00Z")}
    assert kinds["requests_total"] == "counter" and kinds["latency_ms_bucket"] == "histogram"
    assert kinds["tokens"] == "summary" and kinds["queue_depth"] == "gauge"


def test_performance_monitor_samples_the_process_and_the_machine():
    monitor = PerformanceMonitor(labels={"agent_id": "bot"})
    values = monitor.sample()
    assert values["process_memory_rss_bytes"] > 10e6 and values["system_process_count"] >= 1
    assert values["process_memory_vms_bytes"] >= values["process_memory_rss_bytes"]
    assert {"system_cpu_percent", "process_cpu_percent", "system_network_sent_bytes"} <= set(values)
    points = {r["name"]: r for r in monitor.registry.collect("2026-11-01T00:00:00Z")}
    assert points["process_memory_rss_bytes"]["labels"] == {"agent_id": "bot"}
    assert points["process_memory_rss_bytes"]["unit"] == "bytes"


def test_prometheus_exposition_of_records_and_registry():
    from prometheus_client.parser import text_string_to_metric_families

    collector = TelemetryCollector(performance=False)
    prom = PrometheusExporter(metrics=collector.metrics)
    collector.exporters.append(prom)
    collector.metrics.gauge("active_sessions").set(3)
    with collector.trace("run", agent_id="bot", agent_version="1.0"):
        collector.record_llm_call(
            "gpt-4o", input_tokens=812, output_tokens=96, duration_ms=640, cost_usd=0.003
        )
        collector.record_tool_call("search", duration_ms=12, success=False)
    collector.flush()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(prom.exposition()) for s in family.samples}  # fmt: skip
    assert samples[("agentmon_llm_tokens_total", (("direction", "input"), ("model", "gpt-4o")))] == 812
    assert samples[("agentmon_llm_cost_usd_total", (("model", "gpt-4o"),))] == pytest.approx(0.003)
    assert samples[("agentmon_tool_calls_total", (("status", "error"), ("tool_name", "search")))] == 1
    assert (
        samples[
            (
                "agentmon_agent_executions_total",
                (("agent_id", "bot"), ("agent_version", "1.0"), ("status", "ok")),
            )
        ]
        == 1
    )
    assert samples[("active_sessions", ())] == 3


def test_webhook_exporter_signs_batches_and_counts_failures(receiver):
    exporter = WebhookExporter(receiver.url + "/telemetry", secret="s3cret", batch_size=2, backoff_s=0.01)
    collector = TelemetryCollector(exporters=[exporter], performance=False)
    for i in range(3):
        collector.record_tool_call(f"t{i}", duration_ms=1)
    collector.flush()
    posts = [p for p in receiver.posts if p["path"] == "/telemetry"]
    assert [len(p["json"]["records"]) for p in posts] == [2, 1]
    assert all(p["headers"][SIGNATURE_HEADER] == signature("s3cret", p["body"]) for p in posts)
    receiver.down["/telemetry"] = 5  # down for longer than the retries
    collector.record_tool_call("lost", duration_ms=1)
    collector.flush()
    assert collector.stats["export_errors"] == 1 and collector.stats["failed_exports"] == 1
