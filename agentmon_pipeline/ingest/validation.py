"""great-expectations suites for every loaded batch of spans, metrics and events.

The loader already refuses what these expectations forbid, so a failure here is a bug in agentmon
(or a warehouse edited by hand), and it blocks the marts: they would be wrong.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import pandas as pd

from agentmon_pipeline.ingest.native import METRIC_KINDS, SPAN_KINDS, SPAN_STATUSES

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@dataclass
class SuiteResult:
    name: str
    rows: int
    success: bool
    failures: list[str] = field(default_factory=list)
    evaluated: int = 0


SPAN_COLUMNS = [
    "trace_id", "span_id", "name", "kind", "status", "start_time", "end_time", "duration_ms",
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens",
    "reasoning_tokens", "cost_usd", "retry_count",
]  # fmt: skip


def _span_expectations(gx) -> list:
    e = gx.expectations
    out = [e.ExpectColumnValuesToNotBeNull(column=c) for c in
           ("trace_id", "span_id", "name", "kind", "status", "start_time", "end_time", "duration_ms")]  # fmt: skip
    out.append(e.ExpectColumnValuesToBeInSet(column="kind", value_set=list(SPAN_KINDS)))
    out.append(e.ExpectColumnValuesToBeInSet(column="status", value_set=list(SPAN_STATUSES)))
    for c in ("duration_ms", "input_tokens", "output_tokens", "cached_input_tokens",
              "cache_creation_input_tokens", "reasoning_tokens", "cost_usd", "retry_count"):  # fmt: skip
        out.append(e.ExpectColumnValuesToBeBetween(column=c, min_value=0))
    out.append(
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end_time", column_B="start_time", or_equal=True)
    )
    return out


def _metric_expectations(gx) -> list:
    e = gx.expectations
    return [
        *(e.ExpectColumnValuesToNotBeNull(column=c) for c in ("name", "value", "time", "metric_kind")),
        e.ExpectColumnValuesToBeInSet(column="metric_kind", value_set=list(METRIC_KINDS)),
    ]


def _event_expectations(gx) -> list:
    e = gx.expectations
    return [e.ExpectColumnValuesToNotBeNull(column=c) for c in ("event_id", "name", "time")]


def validate_batches(frames: dict[str, pd.DataFrame]) -> list[SuiteResult]:
    """Validate each non-empty frame (keys: spans, metrics, events) with its suite."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    builders = {"spans": _span_expectations, "metrics": _metric_expectations, "events": _event_expectations}
    results: list[SuiteResult] = []
    context = None
    for name, frame in frames.items():
        if frame.empty:
            results.append(SuiteResult(name=name, rows=0, success=True))
            continue
        if context is None:  # importing great-expectations takes seconds: only when there is a batch
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            source = context.data_sources.add_pandas("agentmon")
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}_batch").get_batch(
            batch_parameters={"dataframe": frame}
        )
        suite = gx.ExpectationSuite(name=f"agentmon_{name}")
        for expectation in builders[name](gx):
            suite.add_expectation(expectation)
        outcome = batch.validate(suite)
        failures = []
        for item in outcome.results:
            if not item.success:
                cfg = item.expectation_config
                column = (
                    cfg.kwargs.get("column")
                    or f"{cfg.kwargs.get('column_A')} vs {cfg.kwargs.get('column_B')}"
                )
                unexpected = (item.result or {}).get("unexpected_count")
                failures.append(f"{cfg.type} on {column}: {unexpected} unexpected")
        results.append(
            SuiteResult(
                name=name,
                rows=len(frame),
                success=bool(outcome.success),
                failures=failures,
                evaluated=len(outcome.results),
            )
        )
    return results
