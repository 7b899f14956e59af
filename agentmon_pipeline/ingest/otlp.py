"""OTLP JSON traces (SPEC §3.2) turned into native span records, in DuckDB SQL.

What the OpenTelemetry Collector's file exporter writes: one `ExportTraceServiceRequest` per line
(or one pretty-printed request per file): resourceSpans -> scopeSpans -> spans. Each span becomes
a native JSONL record (a JSON object with the fields of SPEC §3.1), built by unnesting the
requests with DuckDB's JSON functions, never walking spans in Python. The native statement
(`native.typed_records_sql`) then validates and types them exactly as it does native files, so a
span has one set of rules whatever format it came in.

The attribute mapping, first present wins, is the table of SPEC §3.2. Every original attribute is
kept in `attributes` (plus `otel.scope.name` / `otel.scope.version`), every resource attribute in
`resource`.
"""

from __future__ import annotations

# field -> attribute names, first present wins (SPEC §3.2)
ATTRIBUTE_MAP: dict[str, tuple[str, ...]] = {
    "model": ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "ai.model.id"),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "ai.model.provider"),
    "input_tokens": (
        "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
        "ai.usage.inputTokens", "ai.usage.promptTokens",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
        "ai.usage.outputTokens", "ai.usage.completionTokens",
    ),
    "total_tokens": ("gen_ai.usage.total_tokens", "llm.token_count.total", "ai.usage.totalTokens"),
    "cached_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens", "llm.token_count.prompt_details.cache_read",
        "ai.usage.cachedInputTokens",
    ),
    "cache_creation_input_tokens": (
        "gen_ai.usage.cache_creation.input_tokens", "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning",
        "ai.usage.reasoningTokens",
    ),
    "agent_id": ("gen_ai.agent.id",),
    "agent_name": ("gen_ai.agent.name",),
    "agent_version": ("gen_ai.agent.version",),
    "tool_name": ("gen_ai.tool.name", "tool.name", "ai.toolCall.name"),
    "session_id": ("gen_ai.conversation.id", "session.id"),
    "user_id": ("user.id", "enduser.id"),
    "error_type": ("error.type",),
    "input": ("input.value", "gen_ai.input.messages", "ai.prompt.messages", "ai.prompt"),
    "output": ("output.value", "gen_ai.output.messages", "ai.response.text", "ai.response.object"),
}  # fmt: skip

GEN_AI_OPERATION_KINDS = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "execute_tool": "tool",
    "invoke_agent": "agent", "create_agent": "agent", "invoke_workflow": "agent",
    "embeddings": "embedding", "retrieval": "retrieval",
}  # fmt: skip
OPENINFERENCE_KINDS = {
    "LLM": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "chain", "RETRIEVER": "retrieval",
    "EMBEDDING": "embedding", "RERANKER": "retrieval",
}  # fmt: skip


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _attr(obj: str, name: str) -> str:
    """A flattened attribute as text (NULL when absent)."""
    return f"({obj} ->> {_lit('$.' + chr(34) + name + chr(34))})"


def _first(obj: str, names: tuple[str, ...]) -> str:
    return (
        "coalesce(" + ", ".join(_attr(obj, n) for n in names) + ")"
        if len(names) > 1
        else _attr(obj, names[0])
    )


def any_value_sql(v: str, depth: int = 0) -> str:
    """An OTLP AnyValue (JSON) as plain JSON: strings, numbers, booleans, arrays and kvlists
    (nested up to two levels; deeper values stay in their OTLP form), bytes as base64 text."""
    x = f"x{depth}"
    if depth < 2:
        array = f"to_json(list_transform(coalesce(json_extract({v}, '$.arrayValue.values[*]'), []), lambda {x}: {any_value_sql(x, depth + 1)}))"
        kvlist = kv_list_sql(f"({v} -> '$.kvlistValue.values')", depth + 1)
    else:
        array = kvlist = f"({v})"
    double = f"try_cast({v} ->> '$.doubleValue' as double)"
    return f"""(case
        when {v} is null then null
        when json_exists({v}, '$.stringValue') then to_json({v} ->> '$.stringValue')
        when json_exists({v}, '$.intValue') then to_json(try_cast({v} ->> '$.intValue' as hugeint))
        when json_exists({v}, '$.doubleValue') then
            case when isfinite({double}) then to_json({double}) else to_json({v} ->> '$.doubleValue') end
        when json_exists({v}, '$.boolValue') then to_json(try_cast({v} ->> '$.boolValue' as boolean))
        when json_exists({v}, '$.arrayValue') then {array}
        when json_exists({v}, '$.kvlistValue') then {kvlist}
        when json_exists({v}, '$.bytesValue') then to_json({v} ->> '$.bytesValue')
    end)"""


def kv_list_sql(kvs: str, depth: int = 0) -> str:
    """An OTLP list of KeyValue ([{key, value: AnyValue}]) as one JSON object. When a key repeats
    (exporters should not, some do), its last value wins, as in a map."""
    kv, y, i = f"kv{depth}", f"y{depth}", f"i{depth}"
    items = f"coalesce(json_extract({kvs}, '$[*]'), [])"
    keys = f"list_transform({items}, lambda {y}: {y} ->> 'key')"
    last_only = f"list_filter({items}, lambda {kv}, {i}: not list_contains(list_slice({keys}, {i} + 1, len({keys})), {kv} ->> 'key'))"

    unique = f"(case when len(list_distinct({keys})) = len({keys}) then {items} else {last_only} end)"
    value = any_value_sql("(" + kv + " -> " + _lit("value") + ")", depth)
    pairs = f"list_transform({unique}, lambda {kv}: struct_pack(k := {kv} ->> 'key', v := {value}))"
    return f"coalesce(to_json(map_from_entries({pairs})), '{{}}'::json)"


def _hex_id(expr: str) -> str:
    """Trace and span ids: hex (16 or 32 characters) as is, base64 (12 or 24) decoded to hex."""
    return f"""(case
        when {expr} is null or {expr} = '' then null
        when length({expr}) in (16, 32) and regexp_full_match({expr}, '[0-9a-fA-F]+') then lower({expr})
        when length({expr}) in (12, 24) and regexp_full_match({expr}, '[A-Za-z0-9+/]+={{0,2}}')
            then lower(hex(from_base64({expr})))
        else {expr}
    end)"""


def _kind_sql(get) -> str:
    """The kind from the attributes; `get(name)` is the SQL of one attribute as text."""
    op = get("gen_ai.operation.name")
    oi = f"upper({get('openinference.span.kind')})"
    ai = get("ai.operationId")
    gen_ai = " ".join(f"when {op} = {_lit(k)} then {_lit(v)}" for k, v in GEN_AI_OPERATION_KINDS.items())
    openinference = " ".join(f"when {oi} = {_lit(k)} then {_lit(v)}" for k, v in OPENINFERENCE_KINDS.items())
    # Vercel AI SDK: the provider call is ai.<fn>.doGenerate / doStream / doEmbed; the outer
    # ai.generateText (and friends) wraps it and reports the same tokens again, so it is a chain.
    return f"""(case {gen_ai} {openinference}
        when {ai} like 'ai.%.doGenerate' or {ai} like 'ai.%.doStream' then 'llm'
        when {ai} like 'ai.%.doEmbed' then 'embedding'
        when {ai} = 'ai.toolCall' then 'tool'
        when {ai} like 'ai.%' then 'chain'
        else 'other'
    end)"""


def _status_sql(code_expr: str) -> str:
    code = f"upper(coalesce({code_expr}, ''))"
    return f"""(case
        when {code} in ('2', 'STATUS_CODE_ERROR') then 'error'
        when {code} in ('1', 'STATUS_CODE_OK') then 'ok'
        else 'unset'
    end)"""


def _exception_sql(events: str, key: str) -> str:
    """An attribute of the first `exception` event of a span's events (a JSON array)."""
    event = (
        f"list_filter(coalesce(json_extract({events}, '$[*]'), []), lambda e: e ->> 'name' = 'exception')[1]"
    )
    value = f"list_filter(coalesce(json_extract({event}, '$.attributes[*]'), []), lambda kv: kv ->> 'key' = {_lit(key)})[1]"
    return f"({value} -> 'value' ->> 'stringValue')"


def otlp_records_sql(source: str) -> list[str]:
    """Statements over `source(line_number, j)` (j: one ExportTraceServiceRequest); the last one
    selects one native span record per OTLP span: (line_number, ordinal, j, original).

    The spans with their attributes as JSON objects go to a temp table first: the mapping reads
    them dozens of times, and DuckDB would otherwise recompute them for every read."""

    def at(name: str) -> str:  # one attribute, from the struct the attributes were parsed into once
        return f'attr_f."{name}"'

    def first(names: tuple[str, ...]) -> str:
        return "coalesce(" + ", ".join(at(n) for n in names) + ")" if len(names) > 1 else at(names[0])

    fields = {
        "trace_id": _hex_id("span_f.traceId"),
        "span_id": _hex_id("span_f.spanId"),
        "parent_span_id": _hex_id("nullif(span_f.parentSpanId, '')"),
        "name": "span_f.name",
        "kind": _kind_sql(at),
        "start_time_unix_nano": "span_f.startTimeUnixNano",
        "end_time_unix_nano": "span_f.endTimeUnixNano",
        "status": _status_sql("span_f.status ->> 'code'"),
        "error_type": f"coalesce({first(ATTRIBUTE_MAP['error_type'])}, {_exception_sql('span_f.events', 'exception.type')})",
        "error_message": f"coalesce(nullif(span_f.status ->> 'message', ''), {_exception_sql('span_f.events', 'exception.message')})",
        "agent_id": f'coalesce({at("gen_ai.agent.id")}, res_f."service.name")',
        "agent_name": f'coalesce({at("gen_ai.agent.name")}, res_f."service.name")',
        "agent_version": f'coalesce({at("gen_ai.agent.version")}, res_f."service.version")',
    }
    for field in ("session_id", "user_id", "model", "provider", "tool_name", "input", "output", *(
        f for f in ATTRIBUTE_MAP if f.endswith("_tokens")
    )):  # fmt: skip
        fields[field] = first(ATTRIBUTE_MAP[field])
    wanted = sorted({n for names in ATTRIBUTE_MAP.values() for n in names}
                    | {"gen_ai.operation.name", "openinference.span.kind", "ai.operationId"})  # fmt: skip
    attr_struct = _lit("{" + ",".join(f'"{n}":"VARCHAR"' for n in wanted) + "}")
    span_struct = _lit(
        '{"traceId":"VARCHAR","spanId":"VARCHAR","parentSpanId":"VARCHAR","name":"VARCHAR",'
        '"startTimeUnixNano":"VARCHAR","endTimeUnixNano":"VARCHAR","status":"JSON","events":"JSON"}'
    )
    record = ", ".join(f"{_lit(k)}, {v}" for k, v in fields.items())
    scope = "json_object('otel.scope.name', scope ->> 'name', 'otel.scope.version', scope ->> 'version')"
    flat = f"""
    create or replace temp table otlp_flat as
    with requests as (
        select line_number, j from {source}
    ), resource_spans as (
        select line_number,
            unnest(coalesce(json_extract(j, '$.resourceSpans[*]'), [])) as rs
        from requests
    ), resource_lists as (
        -- everything taken from a big document is taken before unnesting it: an expression next
        -- to an unnest is evaluated once per unnested row, and would parse the document each time
        select line_number,
            rs -> '$.resource.attributes' as resource_attributes,
            coalesce(json_extract(rs, '$.scopeSpans[*]'), json_extract(rs, '$.instrumentationLibrarySpans[*]'), []) as scope_list
        from resource_spans
    ), resources as (
        -- the resource's attributes converted once per resource, not once per span of it
        select line_number, scope_list, r,
            json_transform(r, '{{"service.name":"VARCHAR","service.version":"VARCHAR"}}') as res_f
        from (select line_number, scope_list, {kv_list_sql("resource_attributes")} as r from resource_lists)
    ), scope_spans as (
        select line_number, r, res_f, unnest(scope_list) as ss
        from resources
    ), scopes as (
        select line_number, r, res_f,
            coalesce(ss -> 'scope', ss -> 'instrumentationLibrary') as scope,
            coalesce(json_extract(ss, '$.spans[*]'), []) as span_list
        from scope_spans
    ), spans as (
        select line_number, r, res_f, scope, unnest(span_list) as span
        from scopes
    ), flat as (
        select line_number, span, scope, r, res_f,
            {kv_list_sql("(span -> 'attributes')")} as a
        from spans
    )
    -- each JSON parsed once into a struct of the fields the mapping reads
    select line_number, span, scope, a, r, res_f,
        json_transform(span, {span_struct}) as span_f,
        json_transform(a, {attr_struct}) as attr_f
    from flat
    """
    records = f"""
    select
        line_number,
        row_number() over (order by line_number) as ordinal,
        json_object({record},
            'attributes', json_merge_patch(a, {scope}),
            'resource', r) as j,
        span::varchar as original  -- what the quarantine keeps of a span that is not valid
    from otlp_flat
    """
    return [flat, records]
