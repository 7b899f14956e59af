"""What a new user drops first: a few hours of one agent, one run, metrics only, events only.
Times are relative to the current hour, as a user's own telemetry is. Shared by the first-day
pipeline tests and the property-based test."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def run_records(agent: str, version: str, start: datetime, hours: float, per_hour: float, error_share: float,
                seed: int) -> list[dict]:  # fmt: skip
    """Poisson arrivals, lognormal latency and tokens; each run an agent span with one LLM call."""
    rng = random.Random(seed)
    records, t, end = [], start, start + timedelta(hours=hours)
    while per_hour > 0:
        t += timedelta(hours=rng.expovariate(per_hour))
        if t >= end:
            break
        trace = f"{agent}-{seed}-{len(records)}"
        duration = rng.lognormvariate(7.0, 0.6)
        records.append({"trace_id": trace, "span_id": f"{trace}-run", "name": f"invoke_agent {agent}",
                        "kind": "agent", "agent_id": agent, "agent_version": version, "start_time": _iso(t),
                        "duration_ms": round(duration, 3),
                        "status": "error" if rng.random() < error_share else "ok"})  # fmt: skip
        records.append({"trace_id": trace, "span_id": f"{trace}-llm", "parent_span_id": f"{trace}-run",
                        "name": "chat", "kind": "llm", "model": "gpt-4o-mini", "start_time": _iso(t),
                        "duration_ms": round(duration / 2, 3), "input_tokens": int(rng.lognormvariate(6.5, 0.8)),
                        "output_tokens": int(rng.lognormvariate(4.5, 0.7))})  # fmt: skip
    return records


def metric_records(start: datetime, hours: float, every_minutes: int = 5, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    steps = int(hours * 60 // every_minutes)
    return [{"type": "metric", "name": "system.cpu.utilization", "value": round(rng.random(), 4),
             "time": _iso(start + timedelta(minutes=every_minutes * i)), "metric_kind": "gauge",
             "labels": {"host": "a"}} for i in range(steps)]  # fmt: skip


def event_records(start: datetime, count: int, seed: int = 4) -> list[dict]:
    rng = random.Random(seed)
    return [{"type": "event", "name": "user_feedback", "time": _iso(start + timedelta(minutes=7 * i)),
             "agent_id": "solo-bot", "attributes": {"score": rng.randint(1, 5)}} for i in range(count)]  # fmt: skip


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def shape(name: str, landing: Path) -> None:
    """One of the first-day shapes, written into `landing`."""
    now = this_hour()
    if name == "one_run":
        write_jsonl(
            landing / "one.jsonl",
            run_records("solo-bot", "1.0", now - timedelta(minutes=50), 1, 60, 0, 1)[:2],
        )
    elif name == "three_hours_one_agent":
        write_jsonl(
            landing / "first.jsonl", run_records("solo-bot", "1.0", now - timedelta(hours=3), 3, 12, 0.05, 1)
        )
    elif name == "less_than_a_day_two_agents":
        start = now - timedelta(hours=20)
        write_jsonl(landing / "a.jsonl", run_records("solo-bot", "1.0", start, 20, 6, 0.1, 2)
                    + run_records("rare-bot", "0.1", start, 20, 0.3, 0.5, 3))  # fmt: skip
    elif name == "one_day_two_versions":
        start = now - timedelta(hours=30)
        write_jsonl(landing / "a.jsonl", run_records("solo-bot", "1.0", start, 15, 8, 0.05, 4)
                    + run_records("solo-bot", "1.1", start + timedelta(hours=15), 15, 8, 0.05, 5))  # fmt: skip
    elif name == "metrics_and_events_only":  # a file of metrics, one of events, no span
        write_jsonl(landing / "metrics.jsonl", metric_records(now - timedelta(hours=5), 5))
        write_jsonl(landing / "events.jsonl", event_records(now - timedelta(hours=2), 12))
    else:
        raise ValueError(name)


SHAPES = ("one_run", "three_hours_one_agent", "less_than_a_day_two_agents", "one_day_two_versions",
          "metrics_and_events_only")  # fmt: skip
