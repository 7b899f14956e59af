"""OTLP JSON traces: the request structure, every AnyValue kind, ids, the attribute mapping on the
real fixtures of tests/fixtures/corpus/openinference/, and the bad-input rules."""

from __future__ import annotations

import base64
import json

import pytest

from agentmon_pipeline.ingest.loader import ingest_file
from tests.conftest import CORPUS

OPENINFERENCE = CORPUS / "openinference"
T0 = 1_761_991_200_000_000_000  # 2025-11-01T10:00:00Z in ns


def any_value(value) -> dict:
    """Python value -> OTLP AnyValue, as the Collector's JSON encoding writes it."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 as a string, as protobuf's JSON mapping does
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(v)} for k, v in value.items()]}}
    return {"stringValue": str(value)}


def kvs(attributes: dict) -> list[dict]:
    return [{"key": k, "value": any_value(v)} for k, v in attributes.items()]


def otlp_span(
    name, trace_id, span_id, attributes, parent=None, start=T0, end=T0 + 1_000_000, status=0, events=()
):
    span = {"traceId": trace_id, "spanId": span_id, "name": name, "kind": 1, "startTimeUnixNano": str(start),
            "endTimeUnixNano": end, "attributes": kvs(attributes), "status": {"code": status},
            "events": list(events)}  # fmt: skip
    if parent:
        span["parentSpanId"] = parent
    return span


def request(spans: list[dict], resource: dict | None = None) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": kvs(resource or {"service.name": "svc", "service.version": "9"})},
                "scopeSpans": [{"scope": {"name": "test-scope", "version": "1.0"}, "spans": spans}],
            }
        ]
    }


def vercel_to_otlp(span: dict) -> dict:
    """The fixtures are OpenTelemetry JS span objects: [seconds, nanos] times, a spanContext."""
    ns = lambda t: t[0] * 1_000_000_000 + t[1]
    ctx = span["spanContext"]
    return otlp_span(span["name"], ctx["traceId"], ctx["spanId"], span["attributes"],
                     parent=span.get("parentSpanId"), start=ns(span["startTime"]), end=ns(span["endTime"]),
                     status=span["status"]["code"])  # fmt: skip


def load(con, tmp_path, requests: list[dict], name="t.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    return ingest_file(con, path, tmp_path)


def spans(con) -> dict[str, dict]:
    cur = con.execute("select * from raw.spans")
    cols = [d[0] for d in cur.description]
    return {row[cols.index("span_id")]: dict(zip(cols, row, strict=True)) for row in cur.fetchall()}


def test_request_structure_ids_times_and_every_any_value_kind(con, tmp_path):
    trace_b64 = base64.b64encode(bytes(range(16))).decode()
    span_b64 = base64.b64encode(bytes(range(8))).decode()
    attributes = {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 240, "gen_ai.usage.cache_read.input_tokens": 200, "temp": 0.5,
        "stream": True, "finish": ["stop", "length"], "nested": {"a": 1, "b": {"c": ["deep"]}}, "raw": b"\x00\x01",
    }  # fmt: skip
    error = {
        "name": "exception",
        "attributes": kvs({"exception.type": "RateLimitError", "exception.message": "slow down"}),
    }
    req = request([otlp_span("chat gpt-4o", trace_b64, span_b64, attributes, status=2, events=[error])])
    result = load(con, tmp_path, [req])
    assert (result.format, result.status, result.lines, result.loaded) == ("otlp", "loaded", 1, 1)
    s = spans(con)["0001020304050607"]
    assert s["trace_id"] == "000102030405060708090a0b0c0d0e0f"
    assert s["start_time"].isoformat() == "2025-11-01T10:00:00+00:00" and s["duration_ms"] == 1.0
    assert (s["kind"], s["model"], s["input_tokens"], s["output_tokens"], s["cached_input_tokens"]) == (
        "llm",
        "gpt-4o",
        1200,
        240,
        200,
    )
    assert (s["status"], s["error_type"]) == ("error", "RateLimitError")
    assert (s["agent_id"], s["agent_version"], s["source_format"]) == ("svc", "9", "otlp")
    a = json.loads(s["attributes"])
    assert a["temp"] == 0.5 and a["stream"] is True and a["finish"] == ["stop", "length"]
    assert (
        a["nested"]["a"] == 1
        and a["nested"]["b"] == {"c": {"arrayValue": {"values": [{"stringValue": "deep"}]}}}
        and a["raw"] == "AAE="
    )
    assert a["otel.scope.name"] == "test-scope"
    assert json.loads(s["resource"]) == {"service.name": "svc", "service.version": "9"}


def test_pretty_printed_single_request_and_gzip(con, tmp_path):
    import gzip

    req = request([otlp_span("a", "ab" * 16, "cd" * 8, {"openinference.span.kind": "AGENT"})])
    (tmp_path / "pretty.json").write_text(json.dumps(req, indent=2))
    assert ingest_file(con, tmp_path / "pretty.json", tmp_path).loaded == 1
    req2 = request(
        [otlp_span("b", "ab" * 16, "ef" * 8, {"openinference.span.kind": "TOOL"}, parent="cd" * 8)]
    )
    (tmp_path / "more.jsonl.gz").write_bytes(gzip.compress((json.dumps(req2) + "\n").encode()))
    assert ingest_file(con, tmp_path / "more.jsonl.gz", tmp_path).loaded == 1
    assert {k: v["kind"] for k, v in spans(con).items()} == {"cd" * 8: "agent", "ef" * 8: "tool"}


def test_bad_lines_and_bad_spans_are_quarantined_the_rest_loads(con, tmp_path):
    good = request([otlp_span("ok", "ab" * 16, "01" * 8, {})])
    no_name = request([{**otlp_span("x", "ab" * 16, "02" * 8, {}), "name": ""}])
    backwards = request([otlp_span("x", "ab" * 16, "03" * 8, {}, start=T0, end=T0 - 5_000_000)])
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join([json.dumps(good), "not json", '{"foo": 1}', json.dumps(no_name), json.dumps(backwards)])
        + "\n"
    )
    result = ingest_file(con, path, tmp_path)
    assert (result.status, result.lines, result.loaded, result.quarantined) == ("partial", 5, 1, 4)
    reasons = dict(con.execute("select line_number, reason from raw.quarantine").fetchall())
    assert reasons == {
        2: "not valid JSON",
        3: "not an OTLP ExportTraceServiceRequest (no resourceSpans)",
        4: "missing required field name",
        5: "end is before start",
    }

    # a bad span is kept as it was in the file (OTLP, with its attribute list), not as converted
    kept = con.execute("select raw_line from raw.quarantine where line_number = 4").fetchone()[0]
    assert json.loads(kept) == no_name["resourceSpans"][0]["scopeSpans"][0]["spans"][0]


def test_long_string_attributes_are_capped_with_a_marker(con, tmp_path):
    big = "é" * 70_000
    req = request([otlp_span("a", "ab" * 16, "01" * 8, {"input.value": big, "note": big, "n": 3})])
    assert load(con, tmp_path, [req]).loaded == 1
    s = spans(con)["01" * 8]
    a = json.loads(s["attributes"])
    for text in (a["note"], a["input.value"], s["input"]):
        assert len(text.encode()) <= 64 * 1024 and text.endswith("[truncated by agentmon]")
    assert a["n"] == 3


def test_big_files_are_converted_in_chunks_with_the_same_result(con, tmp_path, monkeypatch):
    from agentmon_pipeline.ingest import limits

    reqs = [
        request([otlp_span(f"s{i}-{k}", "ab" * 16, f"{i:08x}{k:08x}", {"gen_ai.operation.name": "chat",
                 "gen_ai.usage.input_tokens": i + k}) for k in range(3)])
        for i in range(40)
    ]  # fmt: skip
    reqs.append(
        request([otlp_span("again", "ab" * 16, f"{0:08x}{0:08x}", {"gen_ai.usage.input_tokens": 999})])
    )
    whole = load(con, tmp_path, reqs, "whole.jsonl")
    expected = con.execute("select * exclude (load_id) from raw.spans order by span_id").fetchall()
    con.execute("delete from raw.spans; delete from raw.ingested_files")
    monkeypatch.setattr(limits, "document_chunk_bytes", lambda: 2000)  # a few requests per chunk
    (tmp_path / "whole.jsonl").rename(tmp_path / "chunked.jsonl")
    chunked = ingest_file(con, tmp_path / "chunked.jsonl", tmp_path)
    assert (chunked.lines, chunked.loaded) == (whole.lines, whole.loaded) == (121, 121)
    assert con.execute("select * exclude (load_id) from raw.spans order by span_id").fetchall() == expected
    # the span repeated in the last request replaced its first version, across chunks
    assert spans(con)["0" * 16]["input_tokens"] == 999 and len(expected) == 120


GENAI_EXPECTED = {
    "openinference_client_span_input_output_only": ("llm", "gpt-4-0613", "openai", 97, 52, None),
    "openinference_client_span_tool_calls": ("llm", "gpt-4-0613", "openai", 97, 52, None),
    "otel_genai_client_span_tool_calls": ("llm", "gpt-4-0613", "openai", 97, 52, None),
    "otel_genai_deprecated_client_span_tool_calls": ("llm", "gpt-4-0613", "openai", 97, 52, None),
    "otel_genai_tool_execution_span": ("tool", None, None, None, None, "get_weather"),
}


@pytest.mark.parametrize("fixture", sorted(GENAI_EXPECTED))
def test_openinference_and_genai_fixtures_map_right(con, tmp_path, fixture):
    attributes = json.loads((OPENINFERENCE / f"openinference-genai_{fixture}.json").read_text())
    load(con, tmp_path, [request([otlp_span("span", "ab" * 16, "cd" * 8, attributes)])])
    s = spans(con)["cd" * 8]
    got = (s["kind"], s["model"], s["provider"], s["input_tokens"], s["output_tokens"], s["tool_name"])
    assert got == GENAI_EXPECTED[fixture]


VERCEL_FILES = [  # named, so that a missing corpus fails instead of leaving nothing to test
    f"openinference-vercel_ai-{name}.json"
    for name in ("embed", "embed-doEmbed", "generateObject", "generateObject-doGenerate", "generateText",
                 "generateText-doGenerate", "streamText", "streamText-doStream")
]  # fmt: skip


@pytest.mark.parametrize("fixture", VERCEL_FILES)
def test_vercel_ai_sdk_fixtures_map_right(con, tmp_path, fixture):
    raw = json.loads((OPENINFERENCE / fixture).read_text())
    load(con, tmp_path, [request([vercel_to_otlp(s) for s in raw])])
    got = spans(con)
    assert len(got) == len(raw)
    for span in raw:
        s = got[span["spanContext"]["spanId"]]
        a = span["attributes"]
        op = a["ai.operationId"]
        if op.endswith((".doGenerate", ".doStream")):
            # the provider call: the LLM call, with the response's model and its tokens
            assert s["kind"] == "llm"
            assert s["model"] == a["gen_ai.response.model"]
            assert s["input_tokens"] == a.get("ai.usage.inputTokens", a.get("ai.usage.promptTokens"))
            assert s["output_tokens"] == a.get("ai.usage.outputTokens", a.get("ai.usage.completionTokens"))
            assert s["cached_input_tokens"] == a.get("ai.usage.cachedInputTokens")
            assert s["reasoning_tokens"] == a.get("ai.usage.reasoningTokens")
        elif op.endswith(".doEmbed"):
            assert (s["kind"], s["model"]) == ("embedding", a["ai.model.id"])
        else:
            # ai.generateText and friends wrap the provider call and repeat its tokens: a chain,
            # so that run totals (which sum LLM calls only) count them once
            assert s["kind"] == "chain"


def test_real_opentelemetry_sdk_output_is_read(con, tmp_path):
    """Spans made with the OpenTelemetry Python SDK, encoded by its OTLP encoder to JSON."""
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "weather-agent", "service.version": "2.1"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agentmon-test")
    with tracer.start_as_current_span("invoke_agent weather", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather", "gen_ai.agent.id": "weather-agent"}):  # fmt: skip
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 321, "gen_ai.usage.output_tokens": 45}):  # fmt: skip
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}):  # fmt: skip
            pass
    line = MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None)
    (tmp_path / "sdk.jsonl").write_text(line + "\n")
    result = ingest_file(con, tmp_path / "sdk.jsonl", tmp_path)
    assert (result.format, result.loaded, result.quarantined) == ("otlp", 3, 0)
    rows = con.execute(
        "select kind, agent_id, agent_version, model, provider, input_tokens, output_tokens, tool_name, parent_span_id is null "
        "from raw.spans order by kind"
    ).fetchall()
    assert rows == [
        ("agent", "weather-agent", "2.1", None, None, None, None, None, True),
        ("llm", "weather-agent", "2.1", "gpt-4o-mini", "openai", 321, 45, None, False),
        ("tool", "weather-agent", "2.1", None, None, None, None, "get_weather", False),
    ]
    # the SDK's protobuf JSON writes ids in base64: they come out as the hex the SDK used
    ids = {format(s.context.span_id, "016x") for s in exporter.get_finished_spans()}
    assert {r[0] for r in con.execute("select span_id from raw.spans").fetchall()} == ids


def test_langfuse_api_shape_and_wrapped_shape_read_alike(con, tmp_path):
    path = CORPUS / "langfuse_framework_traces" / "pydantic-ai-tools-2025-12-04.trace.json"
    export = json.loads(path.read_text())
    api_shape = {**export["trace"], "observations": export["observations"]}
    (tmp_path / "api.json").write_text(json.dumps(api_shape))
    wrapped = ingest_file(con, path, tmp_path)
    rows = con.execute("select * exclude (load_id, source_format) from raw.spans order by span_id").fetchall()
    con.execute("delete from raw.spans")
    api = ingest_file(con, tmp_path / "api.json", tmp_path)
    assert (wrapped.format, api.format) == ("langfuse", "langfuse")
    assert wrapped.spans == api.spans == len(export["observations"])
    assert (
        con.execute("select * exclude (load_id, source_format) from raw.spans order by span_id").fetchall()
        == rows
    )
