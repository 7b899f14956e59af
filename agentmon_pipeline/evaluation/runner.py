"""Run a suite: call the agent for every case, version and repeat, in parallel, with a timeout,
then score every call with every evaluator.

A call that raises is a failed case with its error type, never a crashed benchmark. A call that
outlives `timeout_s` is recorded as `TimeoutError` and the benchmark moves on (Python cannot kill
a thread: the late call finishes in the background and its answer is ignored).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation.evaluators import Call, load_callable
from agentmon_pipeline.evaluation.suite import Case, Suite, load_recorded


@dataclass
class CallRecord:
    version: str
    repeat: int
    call: Call
    started_at: datetime | None = None
    model: str | None = None


@dataclass
class SuiteRun:
    run_id: str
    suite: Suite
    versions: list[str]
    started_at: datetime
    finished_at: datetime
    calls: list[CallRecord] = field(default_factory=list)
    results: pl.DataFrame | None = None

    @property
    def mode(self) -> str:
        return "replay" if self.suite.is_replay else "agent"


def _call_agent(
    agent: Callable[..., Any], case: Case, version: str, timeout_s: float
) -> tuple[Any, float, BaseException | None]:
    """(answer, latency in ms, exception). The agent runs in its own daemon thread so a call that
    hangs cannot hold a worker past its timeout."""
    box: dict[str, Any] = {}

    def target() -> None:
        start = time.perf_counter()
        try:
            box["answer"] = agent(case.input, version=version, case=case)
        except BaseException as exc:  # noqa: BLE001 - an agent's failure is a result, not a crash
            box["error"] = exc
        box["latency_ms"] = (time.perf_counter() - start) * 1000

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return None, timeout_s * 1000, TimeoutError(f"no answer within {timeout_s:g} s")
    return box.get("answer"), box["latency_ms"], box.get("error")


def _to_call(case: Case, answer: Any, latency: float, exc: BaseException | None) -> tuple[Call, str | None]:
    call = Call(
        case.id, case.input, case.expected, latency_ms=latency, tags=case.tags, metadata=case.metadata
    )
    model = None
    if exc is not None:
        call.error_type, call.error_message = type(exc).__name__, str(exc)[:1000]
    elif isinstance(answer, dict) and "output" in answer:
        call.output = answer["output"]
        usage = answer.get("usage") or {}
        call.input_tokens = usage.get("input_tokens", usage.get("prompt_tokens"))
        call.output_tokens = usage.get("output_tokens", usage.get("completion_tokens"))
        call.cost_usd = answer.get("cost_usd", usage.get("cost_usd"))
        model = answer.get("model") or usage.get("model")
    else:
        call.output = answer
    return call, model


def run_agent_calls(
    suite: Suite, versions: list[str], progress: Callable[[int, int], None] | None = None
) -> list[CallRecord]:
    agent = load_callable(suite.agent) if isinstance(suite.agent, str) else suite.agent
    if not callable(agent):
        raise UserError(f"{suite.path}: agent: {suite.agent!r} is not callable")
    # versions interleaved case by case, so that every version meets the same machine load, and
    # their order rotated from case to case (counterbalanced): the first call of a case met a colder
    # cache than the second, and identical versions measured the later one +6.6% slower (p 1e-4)
    tasks = [
        (case, versions[(i + repeat + j) % len(versions)], repeat)
        for repeat in range(suite.repeats)
        for i, case in enumerate(suite.cases)
        for j in range(len(versions))
    ]
    done = [0]
    lock = threading.Lock()

    def work(task: tuple[Case, str, int]) -> CallRecord:
        case, version, repeat = task
        started = datetime.now(UTC)
        answer, latency, exc = _call_agent(agent, case, version, suite.timeout_s)
        call, model = _to_call(case, answer, latency, exc)
        with lock:
            done[0] += 1
            if progress:
                progress(done[0], len(tasks))
        return CallRecord(version, repeat, call, started, model)

    with ThreadPoolExecutor(max_workers=suite.concurrency) as pool:
        return list(pool.map(work, tasks))


def replay_calls(suite: Suite, versions: list[str]) -> list[CallRecord]:
    """Calls from recorded outputs: the agent ran elsewhere."""
    cases = {c.id: c for c in suite.cases}
    records = []
    for row in load_recorded(suite.outputs):
        if row["version"] not in versions:
            continue
        case = cases.get(row["case_id"])
        if case is None:
            raise UserError(
                f"{suite.outputs} line {row['_line']}: case {row['case_id']!r} is not in the dataset"
            )
        call = Call(case.id, case.input, case.expected, output=row.get("output"), latency_ms=row.get("latency_ms"),
                    input_tokens=row.get("input_tokens"), output_tokens=row.get("output_tokens"),
                    cost_usd=row.get("cost_usd"), tags=case.tags, metadata=case.metadata)  # fmt: skip
        if row.get("error"):
            call.error_type = str(row["error"])
        records.append(CallRecord(row["version"], int(row.get("repeat", 0)), call, model=row.get("model")))
    return records


RESULT_SCHEMA = {
    "run_id": pl.String, "suite": pl.String, "case_id": pl.String, "version": pl.String,
    "repeat": pl.Int32, "evaluator": pl.String, "score": pl.Float64, "passed": pl.Boolean,
    "latency_ms": pl.Float64, "error": pl.String, "input_tokens": pl.Int64, "output_tokens": pl.Int64,
    "cost_usd": pl.Float64,
}  # fmt: skip


def score_calls(run_id: str, suite: Suite, calls: list[CallRecord]) -> pl.DataFrame:
    """One row per call and evaluator (evals.results)."""
    rows = []
    for record in calls:
        call = record.call
        for spec in suite.evaluators:
            error = call.error_type
            try:
                score = spec.evaluator.score(call, spec.params)
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 - a user's evaluator that breaks on one output
                score, error = None, f"evaluator {spec.name}: {type(exc).__name__}"
            rows.append({
                "run_id": run_id, "suite": suite.name, "case_id": call.case_id, "version": record.version,
                "repeat": record.repeat, "evaluator": spec.name, "score": score,
                "passed": spec.evaluator.passed(score, spec.threshold), "latency_ms": call.latency_ms,
                "error": error, "input_tokens": call.input_tokens, "output_tokens": call.output_tokens,
                "cost_usd": call.cost_usd,
            })  # fmt: skip
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def run_suite(
    suite: Suite, versions: list[str] | None = None, progress: Callable[[int, int], None] | None = None
) -> SuiteRun:
    versions = versions or suite.versions
    unknown = [v for v in versions if v not in suite.versions]
    if unknown:
        raise UserError(f"suite {suite.name}: version {unknown[0]!r} is not in its versions {suite.versions}")
    run_id = uuid.uuid4().hex[:16]
    started = datetime.now(UTC)
    calls = replay_calls(suite, versions) if suite.is_replay else run_agent_calls(suite, versions, progress)
    finished = datetime.now(UTC)
    run = SuiteRun(run_id, suite, versions, started, finished, calls)
    run.results = score_calls(run_id, suite, calls)
    return run
