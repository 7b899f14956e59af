{#- The walk of int_spans_attributed: one row per span reachable from a root of its trace within
    256 levels, with trace_id, span_id, root_span_id, outer_agent_span_id, nearest_agent_span_id,
    kind, enclosing_llm_span_id, ctx_agent_id, ctx_agent_name, ctx_agent_version, ctx_from_agent
    and depth, from the CTE `nodes` (spans with has_parent and parent_kind) defined before it.
    DuckDB and PostgreSQL walk the tree down with a recursive CTE. Spark 4.0 parses `with recursive` but fails
    to plan it (INTERNAL_ERROR); Spark 4.1 runs it: there, `--vars '{spark_recursive_cte: true}'`
    takes the recursive walk, else Spark takes the pointer-doubling one below. -#}
{% macro with_recursive() -%}
    {{ return(adapter.dispatch('with_recursive', 'agentmon')()) }}
{%- endmacro %}
{% macro default__with_recursive() -%}
    with recursive
{%- endmacro %}
{% macro spark__with_recursive() -%}
    {%- if var('spark_recursive_cte', false) -%} with recursive {%- else -%} with {%- endif -%}
{%- endmacro %}

{% macro span_walk() -%}
    {{ return(adapter.dispatch('span_walk', 'agentmon')()) }}
{%- endmacro %}

{% macro default__span_walk() -%}
{#- a span takes its own agent context if it has one and is an agent span or has no agent above it -#}
{%- set own_context = "(child.agent_id is not null and (child.kind = 'agent' or not walk.ctx_from_agent))" %}
walk as (
    select
        trace_id,
        span_id,
        span_id as root_span_id,
        case when kind = 'agent' then span_id end as outer_agent_span_id,
        case when kind = 'agent' then span_id end as nearest_agent_span_id,
        kind,
        cast(null as {{ string_type() }}) as enclosing_llm_span_id,
        agent_id as ctx_agent_id,
        agent_name as ctx_agent_name,
        agent_version as ctx_agent_version,
        kind = 'agent' as ctx_from_agent,
        0 as depth
    from nodes
    where not has_parent

    union all

    -- the recursive member's columns take their names from the anchor member's above
    -- noqa: disable=AL03
    select
        child.trace_id,
        child.span_id,
        walk.root_span_id,
        coalesce(walk.outer_agent_span_id, case when child.kind = 'agent' then child.span_id end),
        case when child.kind = 'agent' then child.span_id else walk.nearest_agent_span_id end,
        child.kind,
        case when walk.kind = 'llm' then walk.span_id else walk.enclosing_llm_span_id end,
        case when {{ own_context }} then child.agent_id else walk.ctx_agent_id end,
        case when {{ own_context }} then child.agent_name else walk.ctx_agent_name end,
        case when {{ own_context }} then child.agent_version else walk.ctx_agent_version end,
        walk.ctx_from_agent or child.kind = 'agent',
        walk.depth + 1
    -- noqa: enable=AL03
    from walk
    inner join nodes as child
        on child.trace_id = walk.trace_id
        and child.parent_span_id = walk.span_id
        and child.has_parent
    where walk.depth < 256
)
{%- endmacro %}

{#- Spark: pointer doubling instead of recursion. hop_k holds, per span x, facts about the window of
    x and its ancestors at distance 0 .. 2^k - 1, and `jump`, its ancestor at distance 2^k; hop_k+1
    joins x's window to its jump's. After 9 rounds a window spans 512 levels, so every span within
    256 levels of its root has found it (root_span_id, depth); spans in a parent cycle never do and
    are left out, as the recursive walk leaves them out. Facts merge as `first` (the nearest span
    with it wins), `last` (the farthest) or `above` (the nearest span with an agent_id beyond the
    window's farthest agent span). The agent context is that of the nearest span (itself included)
    that has an agent_id and is an agent span or has no agent span above it: the nearest agent
    span with an agent_id, else the nearest span with an agent_id above the outermost agent span
    (anywhere, when there is none), else the root (as the walk's anchor). The rows are spread by
    trace once (`distribute by`): every round's window is within a trace, so no round moves rows
    again, and the chain of rounds is planned once. -#}
{% macro spark__span_walk() -%}
{%- if var('spark_recursive_cte', false) -%}
{{ default__span_walk() }}
{%- else -%}
{%- set rounds = 9 -%}
{%- set facts = {
    'near_agent': ('first', "case when kind = 'agent' then span_id end"),
    'far_agent': ('last', "case when kind = 'agent' then span_id end"),
    'enclosing_llm': ('first', "case when parent_kind = 'llm' then parent_span_id end"),
    'near_agent_with_id': ('first', "case when kind = 'agent' and agent_id is not null then span_id end"),
    'near_with_id': ('first', "case when agent_id is not null then span_id end"),
    'above_with_id': ('above', "case when kind = 'agent' then null when agent_id is not null then span_id end"),
} -%}
walk_hop_0 as (
    select
        trace_id,
        span_id,
        kind,
        case when has_parent then parent_span_id end as jump,
        case when not has_parent then span_id end as root_span_id,
        case when not has_parent then 0 end as depth,
        {%- for name, (how, value) in facts.items() %}
        {{ value }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from nodes
    distribute by trace_id
),
{%- for k in range(rounds) %}

walk_hop_{{ k + 1 }} as (
    -- each row twice (lateral view explode): as x, keyed by its jump, and as j, keyed by itself;
    -- a window over the key hands j's facts to the x rows that jump to it. A self-join of
    -- walk_hop_k would reference it twice: planned that way, 9 rounds ran Spark 4.0 out of memory.
    select
        trace_id,
        span_id,
        kind,
        j_jump as jump,
        coalesce(root_span_id, j_root_span_id) as root_span_id,
        coalesce(depth, j_depth + {{ 2 ** k }}) as depth,
        {%- for name, (how, value) in facts.items() %}
        {%- if how == 'first' %}
        coalesce({{ name }}, j_{{ name }}) as {{ name }}{{ ',' if not loop.last }}
        {%- elif how == 'last' %}
        coalesce(j_{{ name }}, {{ name }}) as {{ name }}{{ ',' if not loop.last }}
        {%- else %}
        case when j_far_agent is not null then j_{{ name }} else coalesce({{ name }}, j_near_with_id) end as {{ name }}{{ ',' if not loop.last }}
        {%- endif %}
        {%- endfor %}
    from (
        select
            *,
            {%- for column in ['jump', 'root_span_id', 'depth'] + facts.keys() | list %}
            max(case when role = 'j' then {{ column }} end) over (partition by trace_id, hop_key) as j_{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from (
            select
                hop.*,
                role,
                case when role = 'x' then hop.jump else hop.span_id end as hop_key
            from walk_hop_{{ k }} as hop
            lateral view explode(array('x', 'j')) roles as role
        ) as both_roles
    ) as looked_up
    where role = 'x'
),
{%- endfor %}

walk as (
    select
        found.trace_id,
        found.span_id,
        found.root_span_id,
        found.far_agent as outer_agent_span_id,
        found.near_agent as nearest_agent_span_id,
        found.kind,
        found.enclosing_llm as enclosing_llm_span_id,
        context.agent_id as ctx_agent_id,
        context.agent_name as ctx_agent_name,
        context.agent_version as ctx_agent_version,
        found.far_agent is not null as ctx_from_agent,
        found.depth
    from walk_hop_{{ rounds }} as found
    left join nodes as context
        on context.trace_id = found.trace_id
        and context.span_id = coalesce(found.near_agent_with_id, found.above_with_id, found.root_span_id)
    where found.root_span_id is not null
        and found.depth <= 256
)
{%- endif %}
{%- endmacro %}
