"""Where the collector's batches go. Each exporter gets finished native records (SPEC §3.1) from
the collector's background thread; a failure raises, and the collector counts it.

- JsonlExporter: native JSONL in a folder (the landing folder). A file is written under a hidden
  temporary name (`.agentmon-….jsonl.part`, which the landing sensor skips) and renamed when it
  is rotated (by size or age) or the collector stops, so the sensor never reads half a file.
- PrometheusExporter: a prometheus-client registry with per-agent, per-model and per-tool
  counters and latency histograms fed from the records, plus the collector's own MetricsRegistry,
  in the text exposition format (`exposition()`, or `serve(port)` for a scrape endpoint).
- WebhookExporter: batches POSTed as JSON (`{"records": [...]}`), HMAC-signed with a secret.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from agentmon_sdk.metrics import MetricsRegistry
from agentmon_sdk.webhooks import SIGNATURE_HEADER, post_json, signature


class Exporter:
    def export(self, records: list[dict]) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        """Called after every flush, with or without records (time-based work such as rotation)."""

    def close(self) -> None:
        """Called once when the collector stops."""


def _dumps(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)


class JsonlExporter(Exporter):
    def __init__(self, directory: str | os.PathLike, prefix: str = "agentmon-sdk",
                 rotate_bytes: int = 16 * 1024 * 1024, rotate_seconds: float = 60.0):  # fmt: skip
        self.directory = Path(directory)
        self.prefix = prefix
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._host = socket.gethostname().split(".")[0] or "host"
        self._seq = 0
        self._file = None
        self._temp: Path | None = None
        self._bytes = 0
        self._opened = 0.0
        self._lock = threading.Lock()
        self.files: list[Path] = []  # every file made visible, in order

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self._final = (
            self.directory / f"{self.prefix}-{self._host}-{os.getpid()}-{stamp}-{self._seq:05d}.jsonl"
        )
        self._temp = self.directory / f".{self._final.name}.part"
        self._file = open(self._temp, "w", encoding="utf-8")  # noqa: SIM115 -- kept open across batches
        self._bytes = 0
        self._opened = time.monotonic()

    def export(self, records: list[dict]) -> None:
        if not records:
            return
        text = "\n".join(_dumps(r) for r in records) + "\n"
        with self._lock:
            if self._file is None:
                self._open()
            self._file.write(text)
            self._file.flush()
            self._bytes += len(text)
            if self._bytes >= self.rotate_bytes:
                self._rotate()

    def tick(self) -> None:
        with self._lock:
            if self._file is not None and time.monotonic() - self._opened >= self.rotate_seconds:
                self._rotate()

    def _rotate(self) -> None:
        """Close the current file and give it its visible name (an atomic rename)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        if self._bytes:
            os.replace(self._temp, self._final)
            self.files.append(self._final)
        else:
            self._temp.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._rotate()


class PrometheusExporter(Exporter):
    """Counters and histograms in a prometheus-client registry (its own, unless one is given)."""

    def __init__(self, registry=None, metrics: MetricsRegistry | None = None, namespace: str = "agentmon"):
        import prometheus_client as prom

        self._prom = prom
        self.registry = registry or prom.CollectorRegistry()
        ms = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
        n = namespace
        self.runs = prom.Counter(
            f"{n}_agent_executions",
            "Agent runs recorded",
            ["agent_id", "agent_version", "status"],
            registry=self.registry,
        )
        self.run_ms = prom.Histogram(
            f"{n}_agent_duration_ms",
            "Agent run duration (ms)",
            ["agent_id"],
            buckets=ms,
            registry=self.registry,
        )
        self.llm = prom.Counter(
            f"{n}_llm_calls", "LLM calls recorded", ["model", "status"], registry=self.registry
        )
        self.llm_ms = prom.Histogram(
            f"{n}_llm_duration_ms", "LLM call duration (ms)", ["model"], buckets=ms, registry=self.registry
        )
        self.tokens = prom.Counter(
            f"{n}_llm_tokens", "Tokens by direction", ["model", "direction"], registry=self.registry
        )
        self.cost = prom.Counter(
            f"{n}_llm_cost_usd", "Provided LLM cost (USD)", ["model"], registry=self.registry
        )
        self.tools = prom.Counter(
            f"{n}_tool_calls", "Tool calls recorded", ["tool_name", "status"], registry=self.registry
        )
        self.tool_ms = prom.Histogram(f"{n}_tool_duration_ms", "Tool call duration (ms)", ["tool_name"], buckets=ms, registry=self.registry)  # fmt: skip
        if metrics is not None:
            self.registry.register(_RegistryBridge(prom, metrics))

    def export(self, records: list[dict]) -> None:
        for r in records:
            if r.get("type", "span") != "span":
                continue
            kind, status = r.get("kind"), r.get("status", "unset")
            duration = float(r.get("duration_ms") or 0.0)
            if kind == "agent":
                self.runs.labels(r.get("agent_id") or "", r.get("agent_version") or "", status).inc()
                self.run_ms.labels(r.get("agent_id") or "").observe(duration)
            elif kind == "llm":
                model = r.get("model") or ""
                self.llm.labels(model, status).inc()
                self.llm_ms.labels(model).observe(duration)
                for direction in ("input", "output"):
                    if r.get(f"{direction}_tokens"):
                        self.tokens.labels(model, direction).inc(r[f"{direction}_tokens"])
                if r.get("cost_usd"):
                    self.cost.labels(model).inc(r["cost_usd"])
            elif kind == "tool":
                tool = r.get("tool_name") or r.get("name") or ""
                self.tools.labels(tool, status).inc()
                self.tool_ms.labels(tool).observe(duration)

    def exposition(self) -> str:
        """The registry in Prometheus' text format, as a scrape would read it."""
        return self._prom.generate_latest(self.registry).decode()

    def serve(self, port: int, addr: str = "127.0.0.1"):
        """A scrape endpoint on http://addr:port/metrics (loopback unless you say otherwise)."""
        return self._prom.start_http_server(port, addr=addr, registry=self.registry)


class _RegistryBridge:
    """The collector's MetricsRegistry as a prometheus-client collector."""

    def __init__(self, prom, metrics: MetricsRegistry):
        self._prom = prom
        self._metrics = metrics

    def collect(self):
        for metric in self._metrics.metrics():
            name = metric.name
            if metric.kind == "counter":
                name = name.removesuffix("_total")
            family = self._prom.Metric(name, metric.description or name, metric.kind)
            for sample_name, labels, value in metric.samples():
                if metric.kind == "counter":
                    sample_name = f"{name}_total"
                family.add_sample(sample_name, labels, value)
            yield family


class WebhookExporter(Exporter):
    """POST batches of at most `batch_size` records; a failed POST is retried `retries` times
    with doubling waits, then raises (the collector counts the records as failed)."""

    def __init__(self, url: str, secret: str | None = None, headers: dict | None = None, timeout_s: float = 5.0,
                 batch_size: int = 500, retries: int = 2, backoff_s: float = 0.5):  # fmt: skip
        self.url = url
        self.secret = secret
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s

    def export(self, records: list[dict]) -> None:
        for start in range(0, len(records), self.batch_size):
            body = json.dumps({"records": records[start:start + self.batch_size]}, default=str).encode()  # fmt: skip
            headers = dict(self.headers)
            if self.secret:
                headers[SIGNATURE_HEADER] = signature(self.secret, body)
            for attempt in range(self.retries + 1):
                try:
                    post_json(self.url, body, headers, self.timeout_s)
                    break
                except OSError:
                    if attempt == self.retries:
                        raise
                    time.sleep(self.backoff_s * 2**attempt)
