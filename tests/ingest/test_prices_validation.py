"""Model prices from genai-prices, and the great-expectations suites."""

from __future__ import annotations

import pandas as pd

from agentmon_pipeline.ingest.prices import resolve_model
from agentmon_pipeline.ingest.validation import validate_batches


def test_known_model_resolves_with_cache_prices():
    (row,) = resolve_model("claude-sonnet-4-5-20250929")  # a dated name resolves to its model
    assert row.matched_model_id == "claude-sonnet-4-5"
    assert (row.input_usd_per_mtok, row.cached_input_usd_per_mtok, row.output_usd_per_mtok) == (
        3.0,
        0.3,
        15.0,
    )
    assert row.cache_write_usd_per_mtok == 3.75


def test_unknown_model_has_no_price():
    assert resolve_model("local-llama-3-8b") == []


def test_a_model_priced_by_the_overrides_seed_is_not_reported_unpriced(con, tmp_path):
    import json

    from agentmon_pipeline.ingest.batch import price_overrides, refresh_model_prices
    from agentmon_pipeline.ingest.loader import ingest_file

    assert "acme-internal-7b" in price_overrides()
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps({"trace_id": "t", "span_id": model, "name": "chat", "kind": "llm", "model": model,
                                        "start_time": "2026-11-01T10:00:00Z", "duration_ms": 5}) + "\n"
                            for model in ("acme-internal-7b", "local-llama-3-8b")))  # fmt: skip
    ingest_file(con, path, tmp_path)
    _, unknown = refresh_model_prices(con)
    assert unknown == ["local-llama-3-8b"]


def _spans(**overrides) -> pd.DataFrame:
    row = {
        "trace_id": "t", "span_id": "s", "name": "x", "kind": "llm", "status": "ok",
        "start_time": pd.Timestamp("2026-11-01T10:00:00Z"), "end_time": pd.Timestamp("2026-11-01T10:00:01Z"),
        "duration_ms": 1000.0, "input_tokens": 10, "output_tokens": 5, "cached_input_tokens": 0,
        "cache_creation_input_tokens": 0, "reasoning_tokens": 0, "cost_usd": 0.1, "retry_count": 0,
    }  # fmt: skip
    row.update(overrides)
    return pd.DataFrame([row])


def test_valid_batch_passes_every_expectation():
    (result,) = validate_batches({"spans": _spans()})
    assert result.success and result.evaluated == 19 and result.failures == []


def test_expectations_catch_what_the_loader_must_never_let_through():
    frame = pd.concat(
        [_spans(), _spans(span_id="neg", output_tokens=-1), _spans(span_id="k", kind="robot"),
         _spans(span_id="early", end_time=pd.Timestamp("2026-11-01T09:00:00Z"))]
    )  # fmt: skip
    (result,) = validate_batches({"spans": frame})
    assert not result.success
    failed = " ".join(result.failures)
    assert "output_tokens" in failed and "kind" in failed and "end_time vs start_time" in failed
