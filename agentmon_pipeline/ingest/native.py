"""Native JSONL (SPEC §3.1): one span, metric or event per line, parsed and validated in DuckDB.

The whole file is handled by a few vectorised SQL statements, never a Python loop per line:

1. Fast path: DuckDB's JSON reader reads every line as one JSON value. It fails on the first
   line that is not JSON; then (and only then) the slow path below runs.
2. Slow path: the file is split into numbered lines, `json_valid` marks the lines that are not
   JSON, and the valid ones go through the same statement as the fast path.
3. One statement maps each record to typed columns and computes the reason a record is invalid
   (missing required field, wrong type, unparseable time, negative count, end before start).

If the fast path finds an invalid record, the slow path runs too, so that every quarantined record
has its line number. Both paths produce the same rows for valid records by construction: the
mapping statement is shared.
"""

from __future__ import annotations

from agentmon_pipeline.ingest.redaction import (
    DEFAULT,
    RedactionPolicy,
    hash_user_attributes_sql,
    hash_user_sql,
    redact_json_sql,
    redact_text_sql,
)

SPAN_KINDS = ("agent", "llm", "tool", "retrieval", "embedding", "chain", "other")
SPAN_STATUSES = ("ok", "error", "unset")
METRIC_KINDS = ("counter", "gauge", "histogram", "summary")
RECORD_TYPES = ("span", "metric", "event")
CAP_BYTES = 64 * 1024
CUT_MARKER = "…[truncated by agentmon]"
# Numbers beyond ±(2^53 - 1) are not exact in a double and not interoperable in JSON (RFC 7493
# §2.2); a count or a cost that large is a broken writer, and sums of it would overflow. Such a
# record is quarantined, never cast (a cast error would fail the whole file).
MAX_NUMBER = 2**53 - 1
MAX_INT32 = 2**31 - 1  # retry_count is an integer column
# Times before the Unix epoch, or more than a day after the ingest (a clock far off, or a corrupt
# value such as year 9999), are quarantined: every bucket and window downstream would span them.
MIN_TIME = "1970-01-01 00:00:00+00"
MAX_FUTURE = "1 day"
MAX_DURATION_MS = 366 * 24 * 3600 * 1000  # a span of more than a year is a corrupt value

# Field -> how it is read. str: any JSON scalar as text; time: RFC 3339 string; int: whole number
# >= 0 (numeric strings accepted); num: number >= 0; value: any finite number; obj: JSON object;
# text: string or any JSON (kept as text).
FIELDS: dict[str, str] = {
    "type": "str",
    "trace_id": "str",
    "span_id": "str",
    "parent_span_id": "str",
    "name": "str",
    "kind": "str",
    "start_time": "time",
    "start_time_unix_nano": "int",
    "end_time": "time",
    "end_time_unix_nano": "int",
    "duration_ms": "num",
    "status": "str",
    "error_type": "str",
    "error_message": "str",
    "agent_id": "str",
    "agent_name": "str",
    "agent_version": "str",
    "session_id": "str",
    "user_id": "str",
    "model": "str",
    "provider": "str",
    "input_tokens": "int",
    "output_tokens": "int",
    "total_tokens": "int",
    "cached_input_tokens": "int",
    "cache_creation_input_tokens": "int",
    "reasoning_tokens": "int",
    "cost_usd": "num",
    "tool_name": "str",
    "retry_count": "int",
    "input": "text",
    "output": "text",
    "attributes": "obj",
    "resource": "obj",
    # metrics
    "value": "value",
    "time": "time",
    "metric_kind": "str",
    "unit": "str",
    "labels": "obj",
}

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def field_types() -> dict[str, str]:
    """The DuckDB type each field is read as before it is checked: JSON for objects and free text,
    VARCHAR (any JSON scalar as text) for the rest."""
    return {field: "JSON" if how in ("obj", "text") else "VARCHAR" for field, how in FIELDS.items()}


def _structure() -> str:
    return "{" + ",".join(f'"{field}":"{duck}"' for field, duck in field_types().items()) + "}"


def _known_nulls() -> str:
    return "{" + ",".join(f'"{f}":null' for f in FIELDS) + "}"


def cap_sql(expr: str) -> str:
    """Character-safe cap: cut to the longest prefix of at most 64 KiB of UTF-8."""
    keep = CAP_BYTES - len(CUT_MARKER.encode())
    # left() counts characters; a character is at most 4 bytes, so keep // 4 characters always fit.
    # Most text is ASCII: try the full byte budget first and fall back to the safe bound.
    return (
        f"(case when strlen({expr}) <= {CAP_BYTES} then {expr} "
        f"when strlen(left({expr}, {keep})) <= {keep} then left({expr}, {keep}) || {_lit(CUT_MARKER)} "
        f"else left({expr}, {keep // 4}) || {_lit(CUT_MARKER)} end)"
    )


def cap_attributes_sql(expr: str) -> str:
    """An attributes object with each top-level string value capped as `cap_sql` caps text. Only
    an object whose JSON text is longer than the cap can hold such a value: others pass as they are."""
    value = "e.value ->> '$'"
    capped = (
        f"case when json_type(e.value) = 'VARCHAR' and strlen({value}) > {CAP_BYTES} "
        f"then to_json({cap_sql(value)}) else e.value end"
    )
    rewrite = (
        f"to_json(map_from_entries(list_transform(map_entries(({expr})::MAP(VARCHAR, JSON)), "
        f"lambda e: struct_pack(k := e.key, v := {capped}))))"
    )
    return f"(case when strlen(({expr})::varchar) <= {CAP_BYTES} then ({expr}) else {rewrite} end)"


def typed_records_sql(source: str) -> str:
    """SQL over `source(line_number, j)` (j: one JSON value per record) -> typed rows + reason.

    `reason` is NULL for a valid record. `needs_exact_check` marks rows where a text field holds
    something that may be a JSON object or array; the caller decides those with json_type.
    """
    t = "t"
    s = lambda f: f"{t}.{_q(f)}"
    checks: list[tuple[str, str]] = []

    def add(cond: str, reason: str) -> None:
        checks.append((cond, reason))

    rtype = f"coalesce(lower(trim({s('type')})), 'span')"
    is_span = f"({rtype} = 'span')"
    is_metric = f"({rtype} = 'metric')"
    is_event = f"({rtype} = 'event')"

    add("not is_object", "not a JSON object")
    add(f"{rtype} not in ('span', 'metric', 'event')", "type must be one of span, metric, event")
    for field in ("trace_id", "span_id", "name"):
        add(f"{is_span} and ({s(field)} is null or trim({s(field)}) = '')", f"missing required field {field}")
    add(
        f"{is_span} and {s('start_time')} is null and {s('start_time_unix_nano')} is null",
        "missing required field start_time (or start_time_unix_nano)",
    )
    add(
        f"{is_span} and {s('end_time')} is null and {s('end_time_unix_nano')} is null and {s('duration_ms')} is null",
        "missing end_time, end_time_unix_nano or duration_ms (one is required)",
    )
    for field in ("name", "time"):
        add(
            f"({is_metric} or {is_event}) and ({s(field)} is null or trim({s(field)}) = '')",
            f"missing required field {field}",
        )
    add(f"{is_metric} and {s('value')} is null", "missing required field value")
    for field, how in FIELDS.items():
        col, num = s(field), _q(field + "__n")
        if how == "time":
            add(
                f"{col} is not null and {_q(field + '__ts')} is null", f"{field} is not an RFC 3339 timestamp"
            )
        elif how == "int":
            add(
                f"{col} is not null and ({num} is null or not isfinite({num}) or {num} <> floor({num}))",
                f"{field} must be a whole number",
            )
            add(f"{num} < 0", f"{field} must be >= 0")
            if not field.endswith("_unix_nano"):  # nanoseconds: the time range below decides
                top = MAX_INT32 if field == "retry_count" else MAX_NUMBER
                add(f"{num} > {top}", f"{field} is too large (at most {top})")
        elif how in ("num", "value"):
            add(f"{col} is not null and {num} is null", f"{field} must be a number")
            add(f"{col} is not null and not isfinite({num})", f"{field} must be finite (not NaN or Infinity)")
            if how == "num":
                add(f"{num} < 0", f"{field} must be >= 0")
            add(f"abs({num}) > {MAX_NUMBER}", f"{field} is too large (at most {MAX_NUMBER})")
        elif how == "obj":
            add(f"{col} is not null and json_type({col}) <> 'OBJECT'", f"{field} must be a JSON object")
    add(
        f"{is_span} and {s('status')} is not null and lower(trim({s('status')})) not in {SPAN_STATUSES}",
        "status must be one of ok, error, unset",
    )
    add(
        f"{is_metric} and {s('metric_kind')} is not null and lower(trim({s('metric_kind')})) not in {METRIC_KINDS}",
        "metric_kind must be one of counter, gauge, histogram, summary",
    )
    add(
        f"{s('duration_ms__n')} > {MAX_DURATION_MS}",
        f"duration_ms is too large (at most {MAX_DURATION_MS}, 366 days)",
    )
    add(
        f"{is_span} and start_ts is null and {s('start_time_unix_nano')} is not null",
        "start_time_unix_nano is not a time",
    )
    add(
        f"{is_span} and end_ts is null and {s('end_time_unix_nano')} is not null",
        "end_time_unix_nano is not a time",
    )
    for label, value in (("start_time", "start_ts"), ("end_time", "end_ts"), ("time", _q("time__ts"))):
        add(f"{value} < '{MIN_TIME}'::timestamptz", f"{label} is before 1970-01-01")
        add(
            f"{value} > now() + interval '{MAX_FUTURE}'",
            f"{label} is more than a day after the time of ingest",
        )
    add(f"{is_span} and end_ts < start_ts", "end is before start")

    reason = "case " + " ".join(f"when {cond} then {_lit(r)}" for cond, r in checks) + " end"
    text_fields = [f for f, how in FIELDS.items() if how == "str"]
    maybe_json = " or ".join(f"left(ltrim({s(f)}), 1) in ('{{', '[')" for f in text_fields)

    # Every number and time is parsed once here; the checks above and the mappings below use these.
    parsed_values = ", ".join(
        [
            f"try_cast(trim({s(f)}) as double) as {_q(f + '__n')}"
            for f, how in FIELDS.items()
            if how in ("int", "num", "value")
        ]
        + [
            f"try_cast({s(f)} as timestamptz) as {_q(f + '__ts')}"
            for f, how in FIELDS.items()
            if how == "time"
        ]
    )

    def ts(field: str, nano: str) -> str:
        exact_nanos = f"try_cast(trim({s(nano)}) as bigint)"  # a double would lose the microseconds
        return f"coalesce({_q(field + '__ts')}, make_timestamp({exact_nanos} // 1000)::timestamptz)"

    # a duration that cannot be a span's (NaN, infinite, negative, beyond a year) gives no end time,
    # and its record a reason, instead of a cast error that would fail the file
    duration = '"duration_ms__n"'
    duration_us = (
        f"case when isfinite({duration}) and {duration} between 0 and {MAX_DURATION_MS} "
        f"then to_microseconds(cast({duration} * 1000 as bigint)) end"
    )

    # One pass maps the known fields; the unknown ones (json_transform ignores them) are kept as
    # `extras`, the object minus every known key, which span_rows_sql merges into attributes. Listing
    # the keys is cheap; building the object of unknown keys is not, so only records that have an
    # unknown key pay for it.
    # Records arrive as trimmed JSON text (DuckDB's reader minifies; the slow path trims), so an
    # object is one that starts with '{'.
    known = ", ".join(_lit(f) for f in FIELDS)
    parsed_text = ", ".join(_q(f) for f, how in FIELDS.items() if how in ("int", "num", "value", "time"))
    return f"""
    with objects as (
        select line_number, ordinal, j, starts_with(j::varchar, '{{') as is_object
        from {source}
    ), parsed as (
        select line_number, ordinal, j, is_object,
            json_transform(case when is_object then j end, {_lit(_structure())}) as rec,
            is_object and len(list_filter(json_keys(j), lambda k: k not in ({known}))) > 0 as has_unknown
        from objects
    ), t as (
        select line_number, ordinal, j, is_object, has_unknown, unnest(rec)
        from parsed
    ), numbers as (
        select * exclude (has_unknown),
            case when has_unknown then json_merge_patch(j, {_lit(_known_nulls())}) end as extras,
            {parsed_values}
        from t
    ), started as (
        select *, {ts("start_time", "start_time_unix_nano")} as start_ts
        from numbers t
    ), timed as (
        select *,
            coalesce(
                {ts("end_time", "end_time_unix_nano")},
                start_ts + {duration_us}
            ) as end_ts
        from started t
    )
    , checked as (
        select *, {reason} as reason, ({maybe_json}) as needs_exact_check
        from timed t
    )
    -- the JSON text is kept only where it is needed again (quarantine, exact checks), and the
    -- text of numbers and times not at all: their parsed values are (a narrower table stays in
    -- memory under the ingest's memory limit instead of spilling)
    select * exclude (is_object, {parsed_text}) replace (case when reason is not null or needs_exact_check then j end as j)
    from checked
    """


def exact_text_check_sql(source: str) -> str:
    """For rows flagged `needs_exact_check`: a text field that really is a JSON object or array."""
    text_fields = [f for f, how in FIELDS.items() if how == "str"]
    conds = " ".join(
        f"when json_type(j, {_lit('$.' + _q(f))}) in ('OBJECT', 'ARRAY') then {_lit(f + ' must be a string')}"
        for f in text_fields
    )
    return f"select line_number, ordinal, case {conds} end as reason from {source}"


def _text_of_json(col: str, policy: RedactionPolicy = DEFAULT) -> str:
    """A JSON value as text: strings unquoted, anything else as its JSON text; redacted, capped."""
    text = f"(case when json_type({col}) = 'VARCHAR' then {col} ->> '$' else {col}::varchar end)"
    return cap_sql(redact_text_sql(text, policy))


def _str(col: str) -> str:
    return f"nullif(trim({col}), '')"


def span_rows_sql(valid: str, load_id: int, fmt: str = "native", policy: RedactionPolicy = DEFAULT) -> str:
    """Spans from the valid typed rows, in the column order of raw.spans."""
    s = _q
    kind_raw = f"lower(trim({s('kind')}))"
    kind = f"case when {s('kind')} is null then 'other' when {kind_raw} in {SPAN_KINDS} then {kind_raw} else 'other' end"
    unknown_kind = f"case when {s('kind')} is not null and {kind_raw} not in {SPAN_KINDS} then json_object('agentmon.original_kind', {s('kind')}) end"
    attributes = f"""
        case
            when extras is null and orig_kind is null then {s("attributes")}
            else json_merge_patch(
                json_merge_patch(coalesce(extras, '{{}}'::json), coalesce({s("attributes")}, '{{}}'::json)),
                coalesce(orig_kind, '{{}}'::json)
            )
        end
    """

    def int_col(f: str) -> str:
        return f"cast({s(f + '__n')} as bigint)"

    def str_capped(f: str) -> str:
        return cap_sql(_str(s(f)))

    def redacted(f: str) -> str:
        return cap_sql(redact_text_sql(_str(s(f)), policy))

    return f"""
    select
        trim({s("trace_id")}) as trace_id,
        trim({s("span_id")}) as span_id,
        {_str(s("parent_span_id"))} as parent_span_id,
        {redacted("name")} as name,
        {kind} as kind,
        start_ts as start_time,
        end_ts as end_time,
        coalesce(
            epoch_us(end_ts) - epoch_us(start_ts),
            0
        ) / 1000.0 as duration_ms,
        coalesce(lower(trim({s("status")})), 'unset') as status,
        {str_capped("error_type")} as error_type,
        {redacted("error_message")} as error_message,
        {_str(s("agent_id"))} as agent_id,
        {_str(s("agent_name"))} as agent_name,
        {_str(s("agent_version"))} as agent_version,
        {_str(s("session_id"))} as session_id,
        {hash_user_sql(_str(s("user_id")), policy)} as user_id,
        {_str(s("model"))} as model,
        {_str(s("provider"))} as provider,
        {int_col("input_tokens")} as input_tokens,
        {int_col("output_tokens")} as output_tokens,
        {int_col("total_tokens")} as total_tokens,
        {int_col("cached_input_tokens")} as cached_input_tokens,
        {int_col("cache_creation_input_tokens")} as cache_creation_input_tokens,
        {int_col("reasoning_tokens")} as reasoning_tokens,
        {s("cost_usd__n")} as cost_usd,
        {str_capped("tool_name")} as tool_name,
        {int_col("retry_count")}::integer as retry_count,
        {_text_of_json(s("input"), policy)} as input,
        {_text_of_json(s("output"), policy)} as output,
        {cap_attributes_sql(hash_user_attributes_sql(redact_json_sql("merged_attributes", policy), policy))} as attributes,
        {redact_json_sql(s("resource"), policy)} as resource,
        {_lit(fmt)} as source_format,
        {load_id}::bigint as load_id,
        line_number,
        ordinal
    from (
        select *, {attributes} as merged_attributes
        from (
            select *, {unknown_kind} as orig_kind
            from {valid}
            where coalesce(lower(trim({s("type")})), 'span') = 'span'
        )
    )
    """


def metric_rows_sql(valid: str, load_id: int, policy: RedactionPolicy = DEFAULT) -> str:
    s = _q
    return f"""
    select
        trim({s("name")}) as name,
        {s("value__n")} as value,
        {s("time__ts")} as time,
        coalesce(lower(trim({s("metric_kind")})), 'gauge') as metric_kind,
        {_str(s("unit"))} as unit,
        {redact_json_sql(s("labels"), policy)} as labels,
        coalesce({s("labels")} ->> '$.agent_id', {_str(s("agent_id"))}) as agent_id,
        coalesce({s("labels")} ->> '$.agent_version', {_str(s("agent_version"))}) as agent_version,
        {load_id}::bigint as load_id,
        line_number,
        ordinal
    from {valid}
    where lower(trim({s("type")})) = 'metric'
    """


def event_rows_sql(valid: str, load_id: int, policy: RedactionPolicy = DEFAULT) -> str:
    s = _q
    return f"""
    select
        md5(concat_ws('|', trim({s("name")}), {s("time__ts")}::varchar,
            {s("trace_id")}, {s("span_id")}, {s("agent_id")}, {s("attributes")}::varchar)) as event_id,
        trim({s("name")}) as name,
        {s("time__ts")} as time,
        {_str(s("trace_id"))} as trace_id,
        {_str(s("span_id"))} as span_id,
        {_str(s("agent_id"))} as agent_id,
        {_str(s("agent_version"))} as agent_version,
        {redact_json_sql(s("attributes"), policy)} as attributes,
        {load_id}::bigint as load_id,
        line_number,
        ordinal
    from {valid}
    where lower(trim({s("type")})) = 'event'
    """
