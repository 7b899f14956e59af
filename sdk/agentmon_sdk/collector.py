"""TelemetryCollector: what an agent process imports to record its runs, LLM calls and tool calls
as agentmon's native records (SPEC §3.1), with almost no overhead.

Recording appends a small dict to an in-memory queue and returns: no I/O, no lock, no formatting,
never an exception into the agent. A background thread drains the queue every `flush_interval_s`,
finishes the records (ids, empty fields dropped), hands them to the exporters and to the event
handlers, samples the PerformanceMonitor and snapshots the MetricsRegistry. The queue is bounded
(`max_queue`): what does not fit is dropped and counted (`stats["dropped"]`, the metric
`agentmon_sdk_dropped_records_total`, and a warning in the log), never hidden.

    collector = TelemetryCollector(landing_dir="/srv/agentmon/landing")
    collector.start()
    with collector.trace("answer", agent_id="support-bot", agent_version="1.2"):
        with collector.span("lookup_order", kind="tool", tool_name="lookup_order"):
            ...
        collector.record_llm_call("gpt-4o", input_tokens=812, output_tokens=96, duration_ms=640)
    collector.stop()
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import random
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from agentmon_sdk.events import EventEmitter
from agentmon_sdk.exporters import Exporter, JsonlExporter
from agentmon_sdk.metrics import MetricsRegistry

log = logging.getLogger("agentmon.telemetry")
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))
_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("agentmon_span", default=None)
EVENT_NAMES = {"agent": "agent_execution", "llm": "llm_call", "tool": "tool_call"}


def _trace_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


def _span_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


class Span:
    """An open span. `set(...)` adds native fields (model, tokens, output, ...) before it ends;
    `set_attribute(key, value)` adds to its attributes."""

    __slots__ = (
        "_token",
        "collector",
        "fields",
        "kind",
        "name",
        "parent_span_id",
        "span_id",
        "start_ns",
        "trace_id",
    )

    def __init__(self, collector: TelemetryCollector, name: str, kind: str, fields: dict):
        parent = _current.get()
        self.collector = collector
        self.name = name
        self.kind = kind
        self.span_id = _span_id()
        if parent is None:
            self.trace_id = fields.pop("trace_id", None) or _trace_id()
            self.parent_span_id = None
        else:
            self.trace_id = parent.trace_id
            self.parent_span_id = parent.span_id
            for key in ("agent_id", "agent_version", "session_id", "user_id"):
                if key not in fields and key in parent.fields:
                    fields[key] = parent.fields[key]
        self.fields = fields
        self.start_ns = 0

    def set(self, **fields: Any) -> Span:
        self.fields.update(fields)
        return self

    def set_attribute(self, key: str, value: Any) -> Span:
        self.fields.setdefault("attributes", {})[key] = value
        return self

    def __enter__(self) -> Self:
        self.start_ns = time.time_ns()
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        end = time.time_ns()
        try:
            _current.reset(self._token)
        except ValueError:  # exited in another context than it was entered: leave the context be
            pass
        self.collector._put((_span_records, self, end, exc_type, exc))
        return False  # the exception, if any, goes on to the agent's own handling


class TelemetryCollector:
    def __init__(
        self,
        landing_dir: str | os.PathLike | None = None,
        exporters: list[Exporter] | tuple = (),
        *,
        agent_id: str | None = None,
        agent_version: str | None = None,
        max_queue: int = 100_000,
        flush_interval_s: float = 1.0,
        metrics_interval_s: float = 15.0,
        performance: bool = True,
        rotate_bytes: int = 16 * 1024 * 1024,
        rotate_seconds: float = 60.0,
        registry: MetricsRegistry | None = None,
        emitter: EventEmitter | None = None,
    ):
        self.agent_id = agent_id
        self.agent_version = agent_version
        self.max_queue = max_queue
        self.flush_interval_s = flush_interval_s
        self.metrics_interval_s = metrics_interval_s
        self.metrics = registry or MetricsRegistry()
        self.events = emitter or EventEmitter()
        self.exporters: list[Exporter] = list(exporters)
        if landing_dir is not None:
            self.exporters.insert(
                0, JsonlExporter(landing_dir, rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds)
            )
        self.performance = None
        if performance:
            from agentmon_sdk.performance import PerformanceMonitor

            labels = {"agent_id": agent_id} if agent_id else {}
            self.performance = PerformanceMonitor(self.metrics, metrics_interval_s, labels)
        self._dropped_metric = self.metrics.counter(
            "agentmon_sdk_dropped_records_total", "records the full queue turned away"
        )
        self._queue: deque = deque()
        self._dropped = 0
        self._dropped_logged = 0
        self._exported = 0
        self._failed = 0
        self._export_errors = 0
        self._internal_errors = 0
        self._last_metrics = 0.0
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # life cycle ------------------------------------------------------------------------------

    def start(self) -> TelemetryCollector:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="agentmon-telemetry", daemon=True)
            self._thread.start()
            atexit.register(self.stop)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued, close the exporters (files get their visible names)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush(final=True)
        for exporter in self.exporters:
            try:
                exporter.close()
            except Exception as exc:
                self._export_errors += 1
                log.warning("telemetry exporter %s failed to close: %s", type(exporter).__name__, exc)
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def stats(self) -> dict[str, int]:
        return {"queued": len(self._queue), "exported": self._exported, "dropped": self._dropped,
                "failed_exports": self._failed, "export_errors": self._export_errors,
                "handler_errors": self.events.errors, "metric_errors": self.metrics.errors,
                "internal_errors": self._internal_errors}  # fmt: skip

    # recording (the agent's thread: cheap, never raises) ---------------------------------------
    # The hot path appends a tuple (a builder and its arguments) to a deque: no dict, no
    # formatting, no lock (deque.append is atomic). The background thread builds the records.

    def _put(self, entry: tuple) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            self._dropped += 1
        else:
            queue.append(entry)

    def trace(self, name: str, *, agent_id: str | None = None, agent_version: str | None = None,
              kind: str = "agent", **fields: Any) -> Span:  # fmt: skip
        """A span that starts a trace (an agent run, by default); nested `span()`s join it."""
        fields["agent_id"] = agent_id or self.agent_id
        fields["agent_version"] = agent_version or self.agent_version
        return Span(self, name, kind, fields)

    def span(self, name: str, kind: str = "chain", **fields: Any) -> Span:
        """A child of the current span (a new trace if there is none): tool, llm, retrieval, ..."""
        return Span(self, name, kind, fields)

    def record_agent_execution(
        self, agent_id: str | None = None, duration_ms: float = 0.0, success: bool = True,
        tokens_used: int | None = None, *, agent_version: str | None = None, name: str | None = None,
        input_tokens: int | None = None, output_tokens: int | None = None, cost_usd: float | None = None,
        model: str | None = None, error_type: str | None = None, error_message: str | None = None,
        session_id: str | None = None, user_id: str | None = None, input: Any = None, output: Any = None,
        attributes: dict | None = None,
    ) -> None:  # fmt: skip
        """A finished agent run that ended now. Tokens and cost given here become one `llm` span
        under the run (the marts count tokens on LLM calls); when you record the LLM calls
        themselves with record_llm_call, leave them out here or they count twice."""
        try:
            self._put((_agent_records, time.time_ns(), agent_id or self.agent_id, agent_version or self.agent_version,
                       duration_ms, success, tokens_used, name, input_tokens, output_tokens, cost_usd, model,
                       error_type, error_message, session_id, user_id, input, output, attributes))  # fmt: skip
        except Exception:
            self._internal_errors += 1

    def record_llm_call(
        self, model: str | None = None, input_tokens: int | None = None, output_tokens: int | None = None,
        duration_ms: float = 0.0, success: bool = True, *, provider: str | None = None,
        cost_usd: float | None = None, cached_input_tokens: int | None = None,
        reasoning_tokens: int | None = None, name: str | None = None, error_type: str | None = None,
        input: Any = None, output: Any = None, agent_id: str | None = None, agent_version: str | None = None,
        attributes: dict | None = None,
    ) -> None:  # fmt: skip
        """A finished LLM call that ended now; inside a trace it joins the current span."""
        try:
            self._put((_llm_records, time.time_ns(), _current.get(), model, input_tokens, output_tokens,
                       duration_ms, success, provider, cost_usd, cached_input_tokens, reasoning_tokens, name,
                       error_type, input, output, agent_id, agent_version, attributes))  # fmt: skip
        except Exception:
            self._internal_errors += 1

    def record_tool_call(
        self, tool_name: str, duration_ms: float = 0.0, success: bool = True, *, error_type: str | None = None,
        input: Any = None, output: Any = None, agent_id: str | None = None, retry_count: int | None = None,
        attributes: dict | None = None,
    ) -> None:  # fmt: skip
        """A finished tool call that ended now; inside a trace it joins the current span."""
        try:
            self._put((_tool_records, time.time_ns(), _current.get(), tool_name, duration_ms, success,
                       error_type, input, output, agent_id, retry_count, attributes))  # fmt: skip
        except Exception:
            self._internal_errors += 1

    def record_metric(self, name: str, value: float, kind: str = "gauge", unit: str | None = None,
                      labels: dict | None = None) -> None:  # fmt: skip
        """One metric point now (a business metric such as task completion or satisfaction)."""
        try:
            self._put((_metric_records, time.time_ns(), name, value, kind, unit, labels))
        except Exception:
            self._internal_errors += 1

    def record_event(self, name: str, attributes: dict | None = None, *, agent_id: str | None = None,
                     agent_version: str | None = None) -> None:  # fmt: skip
        """An event now (user feedback, a deployment, ...); inside a trace it joins the current span."""
        try:
            self._put((_event_records, time.time_ns(), _current.get(), name, attributes,
                       agent_id or self.agent_id, agent_version or self.agent_version))  # fmt: skip
        except Exception:
            self._internal_errors += 1

    # flushing (the background thread) --------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self, final: bool = False, extra: list[Exporter] | None = None) -> int:
        """Drain the queue into the exporters now; returns how many records went out. With no
        exporter at all, records stay queued until export_to_file() is called."""
        exporters = [*self.exporters, *(extra or [])]
        with self._flush_lock:
            try:
                self._snapshot_metrics(force=final)
            except Exception as exc:
                self._internal_errors += 1
                log.warning("telemetry metrics snapshot failed: %s", exc)
            if not exporters:
                return 0
            batch = []
            pop = self._queue.popleft
            try:
                while True:
                    batch.append(pop())
            except IndexError:
                pass
            batch = _build(batch, self)
            if self._dropped > self._dropped_logged:
                self._dropped_metric.inc(self._dropped - self._dropped_logged)
                log.warning("telemetry: %d records dropped, the queue was full (max_queue=%d)",
                            self._dropped - self._dropped_logged, self.max_queue)  # fmt: skip
                self._dropped_logged = self._dropped
            for exporter in exporters:
                try:
                    exporter.export(batch)
                except Exception as exc:
                    self._export_errors += 1
                    self._failed += len(batch)
                    log.warning(
                        "telemetry exporter %s failed on %d records: %s",
                        type(exporter).__name__,
                        len(batch),
                        exc,
                    )
                try:
                    exporter.tick()
                except Exception as exc:
                    self._export_errors += 1
                    log.warning("telemetry exporter %s failed: %s", type(exporter).__name__, exc)
            self._exported += len(batch)
            self._emit(batch)
            return len(batch)

    def export_to_file(self, path: str | os.PathLike) -> Path | None:
        """Write what is queued to a native JSONL file: `path` itself, or a new file in it when it
        is a folder (or has no suffix). The configured exporters get the records too. Returns the
        file, or None when nothing was queued."""
        target = Path(path)
        into_folder = target.is_dir() or not target.suffix
        exporter = JsonlExporter(target if into_folder else target.parent, rotate_seconds=float("inf"),
                                 rotate_bytes=1 << 62)  # fmt: skip
        self.flush(extra=[exporter])
        exporter.close()
        if not exporter.files:
            return None
        if into_folder:
            return exporter.files[-1]
        os.replace(exporter.files[-1], target)
        return target

    def _snapshot_metrics(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_metrics < self.metrics_interval_s:
            return
        self._last_metrics = now
        if self.performance is not None:
            self.performance.sample()
        stamp = _iso(time.time_ns())
        for record in self.metrics.collect(stamp):
            self._put((_as_is, record))

    def _emit(self, batch: list[dict]) -> None:
        events = self.events
        for record in batch:
            kind = record.get("type", "span")
            name = EVENT_NAMES.get(record.get("kind")) if kind == "span" else kind
            if name and events.has_handlers(name):
                events.emit(name, record)
            if kind == "span" and record.get("status") == "error" and events.has_handlers("error"):
                events.emit("error", record)


# building records (the background thread) ------------------------------------------------------


def _build(entries: list[tuple], collector: TelemetryCollector) -> list[dict]:
    """Native records from queued entries; an entry that cannot be built is counted, not raised."""
    out: list[dict] = []
    for entry in entries:
        try:
            for record in entry[0](*entry[1:]):
                out.append({k: v for k, v in record.items() if v is not None})
        except Exception as exc:
            collector._internal_errors += 1
            log.warning("telemetry: a record could not be built: %s", exc)
    return out


def _as_is(record: dict) -> list[dict]:
    return [record]


def _ids_under(parent: Span | None) -> tuple[str, str | None]:
    return (parent.trace_id, parent.span_id) if parent is not None else (_trace_id(), None)


def _span_records(span: Span, end: int, exc_type, exc) -> list[dict]:
    record = {**span.fields, "trace_id": span.trace_id, "span_id": span.span_id,
              "parent_span_id": span.parent_span_id, "name": span.name, "kind": span.kind,
              "start_time_unix_nano": span.start_ns, "end_time_unix_nano": end}  # fmt: skip
    if exc_type is not None:
        record["status"] = "error"
        record["error_type"] = exc_type.__name__
        record["error_message"] = str(exc)[:2000]
    else:
        record.setdefault("status", "ok")
    return [record]


def _agent_records(end, agent_id, agent_version, duration_ms, success, tokens_used, name, input_tokens,
                   output_tokens, cost_usd, model, error_type, error_message, session_id, user_id, input,
                   output, attributes) -> list[dict]:  # fmt: skip
    start = end - int(duration_ms * 1e6)
    run = {"trace_id": _trace_id(), "span_id": _span_id(), "name": name or agent_id or "agent", "kind": "agent",
           "agent_id": agent_id, "agent_version": agent_version, "start_time_unix_nano": start,
           "duration_ms": duration_ms, "status": "ok" if success else "error", "error_type": error_type,
           "error_message": error_message, "session_id": session_id, "user_id": user_id, "input": input,
           "output": output, "attributes": attributes}  # fmt: skip
    if tokens_used is None and input_tokens is None and output_tokens is None and cost_usd is None:
        return [run]
    usage = {"trace_id": run["trace_id"], "span_id": _span_id(), "parent_span_id": run["span_id"], "name": "usage",
             "kind": "llm", "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens,
             "total_tokens": tokens_used, "cost_usd": cost_usd, "start_time_unix_nano": start,
             "duration_ms": duration_ms, "status": "ok", "attributes": {"agentmon.sdk.usage_rollup": True}}  # fmt: skip
    return [run, usage]


def _llm_records(end, parent, model, input_tokens, output_tokens, duration_ms, success, provider, cost_usd,
                 cached_input_tokens, reasoning_tokens, name, error_type, input, output, agent_id, agent_version,
                 attributes) -> list[dict]:  # fmt: skip
    trace_id, parent_id = _ids_under(parent)
    return [{"trace_id": trace_id, "span_id": _span_id(), "parent_span_id": parent_id, "name": name or model or "llm",
             "kind": "llm", "model": model, "provider": provider, "input_tokens": input_tokens,
             "output_tokens": output_tokens, "cached_input_tokens": cached_input_tokens,
             "reasoning_tokens": reasoning_tokens, "cost_usd": cost_usd,
             "start_time_unix_nano": end - int(duration_ms * 1e6), "duration_ms": duration_ms,
             "status": "ok" if success else "error", "error_type": error_type, "input": input, "output": output,
             "agent_id": agent_id, "agent_version": agent_version, "attributes": attributes}]  # fmt: skip


def _tool_records(end, parent, tool_name, duration_ms, success, error_type, input, output, agent_id, retry_count,
                  attributes) -> list[dict]:  # fmt: skip
    trace_id, parent_id = _ids_under(parent)
    return [{"trace_id": trace_id, "span_id": _span_id(), "parent_span_id": parent_id, "name": tool_name,
             "kind": "tool", "tool_name": tool_name, "start_time_unix_nano": end - int(duration_ms * 1e6),
             "duration_ms": duration_ms, "status": "ok" if success else "error", "error_type": error_type,
             "input": input, "output": output, "agent_id": agent_id, "retry_count": retry_count,
             "attributes": attributes}]  # fmt: skip


def _metric_records(ns, name, value, kind, unit, labels) -> list[dict]:
    return [{"type": "metric", "name": name, "value": value, "time": _iso(ns), "metric_kind": kind, "unit": unit,
             "labels": labels}]  # fmt: skip


def _event_records(ns, parent, name, attributes, agent_id, agent_version) -> list[dict]:
    return [{"type": "event", "name": name, "time": _iso(ns), "attributes": attributes, "agent_id": agent_id,
             "agent_version": agent_version, "trace_id": parent.trace_id if parent else None,
             "span_id": parent.span_id if parent else None}]  # fmt: skip
