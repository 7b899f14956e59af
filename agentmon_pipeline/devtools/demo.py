"""Realistic demo telemetry in native JSONL: `agentmon demo`.

Deterministic for a given seed and end hour. What it contains (docs/demo-data.md lists it too):
- agents with 2-3 versions each and a `deployment` event per version; runs follow a daily cycle
  (busy in the UTC afternoon) and a weekly one (quiet weekends);
- LLM calls on several models (one priced only by the overrides seed, one with no price at all),
  tool calls, retries, errors at a few percent, nested sub-agents (research-agent calls
  web-searcher);
- system metrics (CPU, memory, disk, network, processes) every 5 minutes and business metrics
  (task completion, user satisfaction) hourly; user feedback events;
- two planted findings for later analysis: `support-bot` 1.2, deployed 10 days before the end, is
  ~80% slower than 1.1 (a latency regression), and 8 days before the end `research-agent` burns
  ~10x its usual tokens for one day (a cost spike);
- one file with a few bad lines, to show the quarantine.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

MODELS = {
    # model: (provider, typical input tokens, typical output tokens)
    "gpt-4o": ("openai", 1800, 350),
    "gpt-4o-mini": ("openai", 1200, 250),
    "claude-sonnet-4-5-20250929": ("anthropic", 2400, 500),
    "gemini-2.0-flash": ("google", 1500, 300),
    "acme-internal-7b": ("acme", 900, 200),
    "local-llama-3-8b": ("self-hosted", 800, 200),
}


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    name: str
    versions: tuple[str, ...]
    models: tuple[str, ...]
    tools: tuple[str, ...]
    runs_per_hour: float
    base_ms: float
    error_rate: float


AGENTS = (
    AgentSpec("support-bot", "Support Bot", ("1.0", "1.1", "1.2"), ("gpt-4o-mini", "gpt-4o"),
              ("search_kb", "create_ticket"), 9.0, 2200, 0.03),
    AgentSpec("research-agent", "Research Agent", ("2.0", "2.1"), ("claude-sonnet-4-5-20250929", "gpt-4o"),
              ("fetch_url", "summarize"), 3.0, 9000, 0.05),
    AgentSpec("code-reviewer", "Code Reviewer", ("0.9", "1.0"), ("claude-sonnet-4-5-20250929", "acme-internal-7b"),
              ("read_diff", "run_linter"), 2.5, 6000, 0.04),
    AgentSpec("sales-assistant", "Sales Assistant", ("3.1", "3.2", "3.3"), ("gpt-4o-mini", "gemini-2.0-flash"),
              ("crm_lookup", "send_email"), 5.0, 1800, 0.02),
    AgentSpec("data-analyst", "Data Analyst", ("1.0", "1.1"), ("gpt-4o", "local-llama-3-8b"),
              ("run_sql", "plot_chart"), 2.0, 7000, 0.06),
    AgentSpec("triage-router", "Triage Router", ("1.0", "1.1"), ("gemini-2.0-flash", "gpt-4o-mini"),
              ("classify",), 12.0, 600, 0.01),
    AgentSpec("doc-writer", "Doc Writer", ("0.1", "0.2"), ("gpt-4o", "acme-internal-7b"),
              ("read_repo",), 1.5, 8000, 0.04),
    AgentSpec("qa-tester", "QA Tester", ("1.0", "2.0", "2.1"), ("gpt-4o-mini", "gemini-2.0-flash"),
              ("run_tests", "open_bug"), 2.0, 4000, 0.05),
)  # fmt: skip
SUB_AGENT = AgentSpec(
    "web-searcher", "Web Searcher", ("1.0",), ("gpt-4o-mini",), ("web_search",), 0, 1500, 0.02
)
REGRESSED_AGENT, REGRESSED_VERSION, REGRESSION_FACTOR = "support-bot", "1.2", 1.8
SPIKE_AGENT, SPIKE_DAYS_BEFORE_END, SPIKE_FACTOR = "research-agent", 8, 10


@dataclass
class DemoSummary:
    files: list[Path]
    spans: int
    runs: int
    metrics: int
    events: int
    bad_lines: int
    start: datetime
    end: datetime


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seasonality(ts: datetime) -> float:
    """Daily cycle peaking ~15:00 UTC, weekends at 40%."""
    hour = ts.hour + ts.minute / 60
    daily = 0.35 + 0.65 * (0.5 + 0.5 * math.cos((hour - 15) / 24 * 2 * math.pi))
    weekly = 0.4 if ts.weekday() >= 5 else 1.0
    return daily * weekly


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; lam is at most a few dozen here."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _version_schedule(spec: AgentSpec, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
    """(version, deployed_at): the first before the window, the others spread across it."""
    days = (end - start).days
    if spec.agent_id == REGRESSED_AGENT:
        deploys = [
            start - timedelta(days=30),
            start + timedelta(days=max(days - 20, 1)),
            end - timedelta(days=10),
        ]
        return list(zip(spec.versions, deploys[-len(spec.versions):]))  # fmt: skip
    n = len(spec.versions)
    out = [(spec.versions[0], start - timedelta(days=14))]
    for i, version in enumerate(spec.versions[1:], start=1):
        out.append((version, start + timedelta(days=days * i / n + 0.3)))
    return out


class _Writer:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.spans: list[dict] = []
        self.counter = 0

    def new_id(self, width: int = 16) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(width))

    def span(self, **fields) -> dict:
        self.spans.append(fields)
        return fields


def _llm_call(w: _Writer, spec: AgentSpec, trace: str, parent: str, t0: datetime, latency_factor: float,
              token_factor: float, version: str) -> tuple[dict, datetime]:  # fmt: skip
    rng = w.rng
    model = spec.models[0] if rng.random() < 0.7 else spec.models[-1]
    provider, tin, tout = MODELS[model]
    input_tokens = max(20, int(rng.lognormvariate(math.log(tin * token_factor), 0.35)))
    output_tokens = max(5, int(rng.lognormvariate(math.log(tout * token_factor), 0.45)))
    cached = int(input_tokens * rng.choice((0, 0, 0.3, 0.6))) if provider in ("openai", "anthropic") else 0
    ms = rng.lognormvariate(math.log(400 + output_tokens * 12), 0.3) * latency_factor
    status = "error" if rng.random() < 0.01 else "ok"
    retries = 1 if rng.random() < 0.04 else 0
    end = t0 + timedelta(milliseconds=ms)
    record = {
        "trace_id": trace, "span_id": w.new_id(), "parent_span_id": parent, "name": f"chat {model}",
        "kind": "llm", "start_time": _iso(t0), "end_time": _iso(end), "status": status,
        "agent_id": spec.agent_id, "agent_version": version, "model": model, "provider": provider,
        "input_tokens": input_tokens, "output_tokens": output_tokens, "retry_count": retries,
    }  # fmt: skip
    if cached:
        record["cached_input_tokens"] = cached
    if status == "error":
        record["error_type"] = rng.choice(("RateLimitError", "APITimeoutError"))
    return w.span(**record), end


def _run(w: _Writer, spec: AgentSpec, version: str, t0: datetime, parent: tuple[str, str] | None,
         latency_factor: float, token_factor: float, session: str, user: str) -> datetime:  # fmt: skip
    rng = w.rng
    trace, parent_id = parent if parent else (w.new_id(32), None)
    run_id = w.new_id()
    cursor = t0 + timedelta(milliseconds=rng.uniform(5, 40))
    steps = rng.randint(1, 3)
    for step in range(steps):
        _, cursor = _llm_call(w, spec, trace, run_id, cursor, latency_factor, token_factor, version)
        if spec.tools and rng.random() < 0.75:
            tool = rng.choice(spec.tools)
            ms = rng.lognormvariate(math.log(spec.base_ms * 0.15), 0.5) * latency_factor
            failed = rng.random() < 0.03
            end = cursor + timedelta(milliseconds=ms)
            w.span(trace_id=trace, span_id=w.new_id(), parent_span_id=run_id, name=f"tool {tool}", kind="tool",
                   tool_name=tool, start_time=_iso(cursor), end_time=_iso(end),
                   status="error" if failed else "ok", **({"error_type": "ToolError"} if failed else {}),
                   retry_count=1 if failed and rng.random() < 0.5 else 0)  # fmt: skip
            cursor = end
        if spec.agent_id == "research-agent" and step == 0 and rng.random() < 0.6:
            cursor = _run(
                w, SUB_AGENT, "1.0", cursor, (trace, run_id), latency_factor, token_factor, session, user
            )
    cursor += timedelta(milliseconds=rng.lognormvariate(math.log(spec.base_ms * 0.2), 0.4) * latency_factor)
    failed = rng.random() < spec.error_rate
    record = {
        "trace_id": trace, "span_id": run_id, "parent_span_id": parent_id, "name": f"invoke_agent {spec.agent_id}",
        "kind": "agent", "start_time": _iso(t0), "end_time": _iso(cursor), "status": "error" if failed else "ok",
        "agent_id": spec.agent_id, "agent_name": spec.name, "agent_version": version,
        "session_id": session, "user_id": user,
        "input": f"Request from {user}", "output": None if failed else "Done.",
    }  # fmt: skip
    if failed:
        record["error_type"] = w.rng.choice(("ToolError", "ValidationError", "TimeoutError"))
        record["error_message"] = "the agent gave up after its step budget"
    w.span(**record)
    return cursor


def _write_jsonl(path: Path, records: list[dict], gz: bool = False) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
    tmp.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    os.replace(tmp, path)


def generate_demo(landing: Path, days: int = 30, agents: int = 6, seed: int = 7,
                  end: datetime | None = None) -> DemoSummary:  # fmt: skip
    """Write demo telemetry files into `landing`; returns what was written."""
    if days < 1 or agents < 1:
        raise ValueError("days and agents must be at least 1")
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    rng = random.Random(seed)
    specs = [AGENTS[i % len(AGENTS)] for i in range(min(agents, len(AGENTS)))]
    landing.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    runs = spans = 0
    events: list[dict] = []
    schedules = {spec.agent_id: _version_schedule(spec, start, end) for spec in specs}
    for spec in specs:
        for version, deployed in schedules[spec.agent_id]:
            events.append({"type": "event", "name": "deployment", "time": _iso(deployed), "agent_id": spec.agent_id,
                           "agent_version": version, "attributes": {"version": version, "by": "ci"}})  # fmt: skip
    spike_day = (end - timedelta(days=SPIKE_DAYS_BEFORE_END)).date()
    for day in range(days):
        day_start = start + timedelta(days=day)
        w = _Writer(rng)
        for hour in range(24):
            ts = day_start + timedelta(hours=hour)
            for spec in specs:
                expected = spec.runs_per_hour * _seasonality(ts)
                n = _poisson(rng, expected)
                version = [v for v, d in schedules[spec.agent_id] if d <= ts][-1]
                for _ in range(n):
                    t0 = ts + timedelta(seconds=rng.uniform(0, 3599))
                    latency = (
                        REGRESSION_FACTOR
                        if (spec.agent_id, version) == (REGRESSED_AGENT, REGRESSED_VERSION)
                        else 1.0
                    )
                    tokens = SPIKE_FACTOR if spec.agent_id == SPIKE_AGENT and ts.date() == spike_day else 1.0
                    user = f"user-{rng.randint(1, 400)}"
                    _run(w, spec, version, t0, None, latency, tokens, f"session-{w.new_id(8)}", user)
                    runs += 1
                    if rng.random() < 0.08:
                        events.append({"type": "event", "name": "user_feedback", "time": _iso(t0 + timedelta(minutes=2)),
                                       "agent_id": spec.agent_id, "agent_version": version,
                                       "attributes": {"score": rng.choice((1, 1, 1, 0)), "user_id": user}})  # fmt: skip
        name = f"spans-{day_start:%Y-%m-%d}.jsonl"
        gz = day % 5 == 4  # some days arrive compressed, as rotated logs do
        path = landing / (name + (".gz" if gz else ""))
        _write_jsonl(path, w.spans, gz=gz)
        files.append(path)
        spans += len(w.spans)
    metrics = _metrics(rng, specs, start, end)
    metrics_path = landing / "metrics.jsonl"
    _write_jsonl(metrics_path, metrics)
    events_path = landing / "events.jsonl"
    _write_jsonl(events_path, sorted(events, key=lambda e: e["time"]))
    bad_path = landing / "late-arrivals-with-bad-lines.jsonl"
    bad_lines = _bad_file(bad_path, rng, specs[0], end)
    files += [metrics_path, events_path, bad_path]
    old = time.time() - 60  # complete files: no need to wait for them to settle
    for path in files:
        os.utime(path, (old, old))
    return DemoSummary(files, spans + 2, runs + 1, len(metrics), len(events), bad_lines, start, end)


def _metrics(rng: random.Random, specs: list[AgentSpec], start: datetime, end: datetime) -> list[dict]:
    out = []
    ts = start
    while ts < end:
        load = _seasonality(ts)
        labels = {"host": "agent-host-1"}
        out += [
            {"type": "metric", "name": "system.cpu.utilization", "value": round(min(0.98, 0.15 + 0.6 * load + rng.gauss(0, 0.04)), 4), "time": _iso(ts), "metric_kind": "gauge", "unit": "1", "labels": labels},
            {"type": "metric", "name": "process.memory.rss", "value": int(1.2e9 + 6e8 * load + rng.gauss(0, 5e7)), "time": _iso(ts), "metric_kind": "gauge", "unit": "By", "labels": labels},
            {"type": "metric", "name": "process.memory.vms", "value": int(3.5e9 + 8e8 * load), "time": _iso(ts), "metric_kind": "gauge", "unit": "By", "labels": labels},
            {"type": "metric", "name": "system.disk.io", "value": int(2e6 * load + abs(rng.gauss(0, 2e5))), "time": _iso(ts), "metric_kind": "counter", "unit": "By", "labels": labels},
            {"type": "metric", "name": "system.network.io", "value": int(5e6 * load + abs(rng.gauss(0, 4e5))), "time": _iso(ts), "metric_kind": "counter", "unit": "By", "labels": labels},
            {"type": "metric", "name": "system.processes.count", "value": 40 + int(20 * load), "time": _iso(ts), "metric_kind": "gauge", "unit": "{process}", "labels": labels},
        ]  # fmt: skip
        if ts.minute == 0:
            for spec in specs:
                out.append({"type": "metric", "name": "business.task_completion_rate", "value": round(min(1, max(0, 0.9 - spec.error_rate + rng.gauss(0, 0.03))), 4),
                            "time": _iso(ts), "metric_kind": "gauge", "unit": "1", "labels": {"agent_id": spec.agent_id}})  # fmt: skip
                out.append({"type": "metric", "name": "business.user_satisfaction", "value": round(min(5, max(1, 4.2 + rng.gauss(0, 0.3))), 2),
                            "time": _iso(ts), "metric_kind": "gauge", "unit": "score", "labels": {"agent_id": spec.agent_id}})  # fmt: skip
        ts += timedelta(minutes=5)
    return out


def _bad_file(path: Path, rng: random.Random, spec: AgentSpec, end: datetime) -> int:
    """A late file: one good run (2 spans) and 4 lines a real exporter might get wrong."""
    t0 = end - timedelta(hours=2)
    trace = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    good = [
        {"trace_id": trace, "span_id": "late00000000001", "name": f"invoke_agent {spec.agent_id}", "kind": "agent",
         "start_time": _iso(t0), "end_time": _iso(t0 + timedelta(seconds=3)), "status": "OK",
         "agent_id": spec.agent_id, "agent_version": spec.versions[-1]},
        {"trace_id": trace, "span_id": "late00000000002", "parent_span_id": "late00000000001", "name": "chat gpt-4o-mini",
         "kind": "llm", "start_time": _iso(t0), "duration_ms": 900, "model": "gpt-4o-mini", "input_tokens": "1200",
         "output_tokens": 240},
    ]  # fmt: skip
    lines = [json.dumps(r) for r in good] + [
        '{"trace_id": "' + trace + '", "span_id": "late-bad-1", "name": "chat", "kind": "llm", "start_time": "not a time", "duration_ms": 5}',
        '{"trace_id": "' + trace + '", "span_id": "late-bad-2", "name": "chat", "kind": "llm", "start_time": "' + _iso(t0) + '", "duration_ms": 5, "input_tokens": -40}',
        '{"trace_id": "' + trace + '", "span_id": "late-bad-3", "name": "chat", "start_time": "' + _iso(t0),
        "this line is not JSON at all",
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return 4
