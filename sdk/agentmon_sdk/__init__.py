"""The telemetry SDK: record agent runs, LLM and tool calls, metrics and events from an agent
process, with almost no overhead, into files the landing sensor ingests (and Prometheus or a
webhook). Imports only the standard library, psutil and (for PrometheusExporter) prometheus-client."""

from agentmon_sdk.collector import Span, TelemetryCollector
from agentmon_sdk.events import EventEmitter
from agentmon_sdk.exporters import Exporter, JsonlExporter, PrometheusExporter, WebhookExporter
from agentmon_sdk.metrics import Counter, Gauge, Histogram, MetricsRegistry, Summary
from agentmon_sdk.performance import PerformanceMonitor

__all__ = [
    "Counter", "EventEmitter", "Exporter", "Gauge", "Histogram", "JsonlExporter", "MetricsRegistry",
    "PerformanceMonitor", "PrometheusExporter", "Span", "Summary", "TelemetryCollector", "WebhookExporter",
]  # fmt: skip
