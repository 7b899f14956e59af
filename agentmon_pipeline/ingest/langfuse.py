"""Langfuse trace exports turned into native records, in SQL: `{"trace": …, "observations": […]}`,
or the trace object of Langfuse's public API (`GET /api/public/traces/{id}`) with its observations.

Observations become spans, trace scores become events. Like OTLP files, the records then go
through the native statement, so they are validated and typed by the same rules.

- Kind: the OpenTelemetry attributes Langfuse keeps in each observation's `metadata` decide first,
  with the OTLP mapping (so a Vercel `ai.generateText` wrapper is a chain even where Langfuse calls
  it a GENERATION); otherwise Langfuse's type: GENERATION -> llm, TOOL -> tool, AGENT -> agent,
  CHAIN -> chain, RETRIEVER -> retrieval, EMBEDDING -> embedding, anything else -> other.
- Tokens: Langfuse's `usageDetails`. Langfuse splits cached input, audio and reasoning out of
  `input` / `output` (`input_cache_read`, `output_reasoning`, `prompt_details.*`,
  `completion_details.*`); they are added back, unless the details are already inside the total
  (input + output = total), as Gemini's reasoning is. A reported total above input + output is
  left to the staging rule of SPEC §4 (the gap is reasoning).
- Cost: Langfuse's `totalCost` is provided cost when Langfuse priced the call (`costDetails` not
  empty); otherwise the cost is computed from our prices like any other call.
- Agent: an AGENT observation is its own agent (`gen_ai.agent.name`, else its name); the trace's
  root observation carries the trace's name and version, which inherit down the trace.
- Level ERROR is status error (with its status message); session and user come from the trace.
"""

from __future__ import annotations

from agentmon_pipeline.ingest.otlp import _attr, _kind_sql, _lit

LANGFUSE_KINDS = {
    "GENERATION": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "chain", "RETRIEVER": "retrieval",
    "EMBEDDING": "embedding",
}  # fmt: skip
INPUT_DETAILS = ("input_cache_read", "input_cache_creation", "input_audio", "prompt_details.cache_read",
                 "prompt_details.audio", "prompt_details.cache_write")  # fmt: skip
OUTPUT_DETAILS = (
    "output_reasoning",
    "output_audio",
    "completion_details.reasoning",
    "completion_details.audio",
)
CACHED = ("input_cache_read", "prompt_details.cache_read")
CACHE_WRITES = ("input_cache_creation", "prompt_details.cache_write")
REASONING = ("output_reasoning", "completion_details.reasoning")


def _usage(key: str) -> str:
    return f"try_cast(u ->> {_lit('$.' + chr(34) + key + chr(34))} as bigint)"


def _sum(keys: tuple[str, ...]) -> str:
    return "(" + " + ".join(f"coalesce({_usage(k)}, 0)" for k in keys) + ")"


def _any(keys: tuple[str, ...]) -> str:
    return "(" + " or ".join(f"{_usage(k)} is not null" for k in keys) + ")"


def langfuse_records_sql(source: str) -> list[str]:
    """Statements over `source(line_number, j)` (j: one Langfuse trace export); the last selects
    native records (line_number, ordinal, j): a span per observation, an event per score. The
    observations are parsed into a temp table first (the mapping reads them many times)."""
    kinds = " ".join(f"when o ->> 'type' = {_lit(k)} then {_lit(v)}" for k, v in LANGFUSE_KINDS.items())
    details_inside = f"({_usage('total')} is not null and coalesce({_usage('input')}, 0) + coalesce({_usage('output')}, 0) = {_usage('total')})"
    input_tokens = f"case when {details_inside} then {_usage('input')} else {_usage('input')} + {_sum(INPUT_DETAILS)} end"
    output_tokens = f"case when {details_inside} then {_usage('output')} else {_usage('output')} + {_sum(OUTPUT_DETAILS)} end"
    otel_kind = _kind_sql(lambda name: _attr("a", name))
    # each document is parsed once, into a temp table both statements below read
    exports = f"""
    create or replace temp table langfuse_exports as
    with documents as (
        -- {{trace, observations}}, or the trace object of Langfuse's API with observations inside
        select line_number, coalesce(j -> 'trace', j) as trace_doc, j from {source}
    )
    -- the trace's fields are read once per document, before unnesting: next to an unnest an
    -- expression is evaluated once per unnested row and would parse the whole document each time
    select line_number,
        json_object('id', trace_doc ->> 'id', 'name', trace_doc ->> 'name', 'version', trace_doc ->> 'version',
            'release', trace_doc ->> 'release', 'sessionId', trace_doc ->> 'sessionId',
            'userId', trace_doc ->> 'userId') as trace,
        coalesce(json_extract(j, '$.observations[*]'), []) as observation_list,
        coalesce(json_extract(trace_doc, '$.scores[*]'), []) as score_list
    from documents
    """
    parsed = """
    create or replace temp table langfuse_observations as
    with observations as (
        select line_number, trace, unnest(observation_list) as o
        from langfuse_exports
    ), parsed as (
        select line_number, trace, o,
            o -> 'usageDetails' as u,
            coalesce(
                case when json_type(o -> 'metadata') = 'OBJECT' then o -> 'metadata' end,
                case when json_valid(o ->> 'metadata') then (o ->> 'metadata')::json end,
                '{}'::json
            ) as metadata
        from observations
    )
    select *, coalesce(metadata -> 'attributes', '{}'::json) as a
    from parsed
    """
    records = f"""
    with spans as (
        select line_number,
            json_object(
                'type', 'span',
                'trace_id', coalesce(o ->> 'traceId', trace ->> 'id'),
                'span_id', o ->> 'id',
                'parent_span_id', o ->> 'parentObservationId',
                'name', o ->> 'name',
                'kind', case when {otel_kind} <> 'other' then {otel_kind} {kinds} else 'other' end,
                'start_time', o ->> 'startTime',
                'end_time', coalesce(o ->> 'endTime', o ->> 'startTime'),
                'status', case when o ->> 'level' = 'ERROR' then 'error' else 'unset' end,
                'error_message', case when o ->> 'level' = 'ERROR' then o ->> 'statusMessage' end,
                'agent_id', case
                    when o ->> 'type' = 'AGENT' then coalesce(a ->> '$."gen_ai.agent.name"', o ->> 'name')
                    when o ->> 'parentObservationId' is null then trace ->> 'name' end,
                'agent_version', case when o ->> 'parentObservationId' is null
                    then coalesce(trace ->> 'version', trace ->> 'release') end,
                'session_id', trace ->> 'sessionId',
                'user_id', trace ->> 'userId',
                'model', o ->> 'model',
                'provider', coalesce(a ->> '$."gen_ai.system"', a ->> '$."gen_ai.provider.name"', a ->> '$."llm.provider"'),
                'input_tokens', {input_tokens},
                'output_tokens', {output_tokens},
                'total_tokens', {_usage("total")},
                'cached_input_tokens', case when {_any(CACHED)} then {_sum(CACHED)} end,
                'cache_creation_input_tokens', case when {_any(CACHE_WRITES)} then {_sum(CACHE_WRITES)} end,
                'reasoning_tokens', case when {_any(REASONING)} then {_sum(REASONING)} end,
                'cost_usd', case when json_type(o -> 'costDetails') = 'OBJECT' and (o -> 'costDetails')::varchar <> '{{}}'
                    then o -> 'totalCost' end,
                'tool_name', case when o ->> 'type' = 'TOOL' then o ->> 'name' end,
                'input', o -> 'input',
                'output', o -> 'output',
                'attributes', json_merge_patch(a, json_object(
                    'langfuse.type', o ->> 'type', 'langfuse.level', o ->> 'level',
                    'langfuse.usage_details', u, 'langfuse.total_cost', o -> 'totalCost')),
                'resource', metadata -> 'resourceAttributes'
            ) as record,
            o::varchar as original
        from langfuse_observations
    ), scores as (
        select line_number, trace, unnest(score_list) as s
        from langfuse_exports
    ), events as (
        select line_number,
            json_object(
                'type', 'event',
                'name', s ->> 'name',
                'time', s ->> 'timestamp',
                'trace_id', coalesce(s ->> 'traceId', trace ->> 'id'),
                'span_id', s ->> 'observationId',
                'attributes', json_object('value', s -> 'value', 'string_value', s -> 'stringValue',
                    'source', s -> 'source', 'data_type', s -> 'dataType', 'comment', s -> 'comment',
                    'langfuse.score_id', s -> 'id')
            ) as record,
            s::varchar as original
        from scores
    ), records as (
        select * from spans union all select * from events
    )
    -- `original`: the observation or score as exported, what the quarantine keeps of a bad one
    select line_number, row_number() over (order by line_number) as ordinal, record as j, original
    from records
    """
    return [exports, parsed, records]
