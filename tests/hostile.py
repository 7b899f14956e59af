"""Hostile lines: values beyond what a column holds, nesting deeper than Python's parser, times
out of range. Each is quarantined with its reason; the good lines beside it load. Shared by the
loader's unit tests, the pipeline's first-day tests and the property-based test."""

from __future__ import annotations

import json


def good_span(span_id: str, start: str = "2026-11-27T10:00:00Z", **fields) -> dict:
    return {"trace_id": f"t-{span_id}", "span_id": span_id, "name": "invoke_agent bot", "kind": "agent",
            "agent_id": "bot", "agent_version": "1", "start_time": start, "duration_ms": 1200,
            "status": "ok", **fields}  # fmt: skip


def _span(span_id: str, **fields) -> str:
    return json.dumps(good_span(span_id, **fields))


DEEP = 10_000
# class -> (the hostile line, what its quarantine reason says; None: the line loads)
HOSTILE: dict[str, tuple[str, str | None]] = {
    "tokens_1e30": (_span("h1", kind="llm", input_tokens=1e30), "input_tokens is too large"),
    "tokens_nan_string": (_span("h2", kind="llm", output_tokens="NaN"), "output_tokens must be a whole number"),
    "tokens_infinity_string": (_span("h3", kind="llm", input_tokens="Infinity"), "input_tokens must be a whole number"),
    "tokens_negative": (_span("h4", kind="llm", output_tokens=-5), "output_tokens must be >= 0"),
    "cost_1e308": (_span("h5", kind="llm", cost_usd=1e308), "cost_usd is too large"),
    "duration_nan_literal": (_span("h6").replace('"duration_ms": 1200', '"duration_ms": NaN'), "duration_ms must be finite (not NaN or Infinity)"),
    "duration_infinity_literal": (_span("h7").replace('"duration_ms": 1200', '"duration_ms": Infinity'), "duration_ms must be finite (not NaN or Infinity)"),
    "duration_1e13": (_span("h8", duration_ms=1e13), "duration_ms is too large"),
    "retry_count_beyond_int32": (_span("h9", retry_count=3_000_000_000), "retry_count is too large"),
    "unix_nanos_beyond_int64": (
        json.dumps({"trace_id": "t", "span_id": "h10", "name": "x", "duration_ms": 5})[:-1]
        + ', "start_time_unix_nano": 99999999999999999999}', "start_time_unix_nano is not a time"),
    "year_1": (_span("h11", start="0001-01-01T00:00:00Z"), "start_time is before 1970-01-01"),
    "year_9999": (_span("h12", start="9999-12-31T23:00:00Z"), "start_time is more than a day after"),
    "far_future": (_span("h13", start="2090-06-01T00:00:00Z"), "start_time is more than a day after"),
    "end_in_year_9999": (_span("h14", end_time="9999-01-01T00:00:00Z"), "end_time is more than a day after"),
    "metric_value_1e308": (json.dumps({"type": "metric", "name": "m", "value": 1e308, "time": "2026-11-27T10:00:00Z"}),
                           "value is too large"),
    "metric_in_year_9999": (json.dumps({"type": "metric", "name": "m", "value": 1, "time": "9999-01-01T00:00:00Z"}),
                            "time is more than a day after"),
    "event_in_year_1": (json.dumps({"type": "event", "name": "e", "time": "0001-01-01T00:00:00Z"}),
                        "time is before 1970-01-01"),
    # nesting deeper than Python's json module: DuckDB's parser reads it, so the span loads
    "nested_10000_deep": (_span("h15")[:-1] + ', "attributes": {"deep": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}}",
                          None),
}  # fmt: skip


def hostile_file_text(name: str) -> str:
    """A hostile line first (where format detection looks) and a good span after it."""
    return HOSTILE[name][0] + "\n" + json.dumps(good_span(f"ok-{name}")) + "\n"
