"""Analytics through Dagster on the demo data: the planted findings are found, the tables are
filled, and the findings are WARN checks."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agentmon_pipeline.analytics.db import DatabaseManager
from agentmon_pipeline.analytics.engine import AnalyticsEngine
from agentmon_pipeline.analytics.timeseries import RUN_METRICS
from agentmon_pipeline.devtools.demo import SPIKE_DAYS_BEFORE_END
from tests.conftest import DEMO_DAYS, DEMO_END


@pytest.mark.slow
@pytest.mark.xdist_group("reports")  # the worker that builds the shared demo warehouse: the other goes on
def test_demo_findings_are_found_and_stored(demo_warehouse):
    """The shared demo warehouse (tests/conftest.py: DEMO_DAYS days, 6 agents, the example config)."""
    checks = demo_warehouse["checks"]
    assert checks["no_version_regressions"] == [False, "AssetCheckSeverity.WARN"]  # a finding, not a failure

    con = duckdb.connect(demo_warehouse["warehouse"], read_only=True)
    frame = lambda sql: pl.from_arrow(con.sql(sql).to_arrow_table())
    # the latency regression of support-bot 1.2 (about +80%), found from production runs
    versions = frame("select * from analytics.version_comparisons where agent_id = 'support-bot'")
    latency = versions.filter(
        (pl.col("candidate_version") == "1.2") & (pl.col("metric") == "p95_duration_ms")
    ).row(0, named=True)
    assert latency["verdict"] == "regressed" and latency["baseline_version"] == "1.1"
    assert 0.4 < latency["effect"] < 1.2 and latency["ci_low"] > 0.1
    # the cost spike: research-agent's hours on the spike day are abnormal, upwards
    spike_day = (DEMO_END - timedelta(days=SPIKE_DAYS_BEFORE_END)).date()
    spikes = frame(
        "select * from analytics.anomalies where agent_id = 'research-agent' and metric = 'total_tokens' and direction = 'up'"
    )
    days = spikes["bucket_start"].dt.date().value_counts().sort("count", descending=True)
    assert days.row(0)[0] == spike_day and days.row(0)[1] >= 3
    # forecasts: 14 days of cost, tokens and runs, per agent and in total, intervals in order
    forecasts = frame("select * from analytics.forecasts")
    assert forecasts.filter(pl.col("agent_id").is_null() & (pl.col("metric") == "cost_usd")).height == 14
    assert set(forecasts["metric"]) == {"cost_usd", "total_tokens", "runs"}
    ordered = forecasts.filter(pl.col("yhat_lower_95").is_not_null())
    assert ordered.height and (ordered["yhat_lower_95"] <= ordered["yhat_lower_80"]).all()
    assert (ordered["yhat_lower_80"] <= ordered["yhat_upper_80"]).all() and (
        ordered["yhat_upper_80"] <= ordered["yhat_upper_95"]
    ).all()
    assert forecasts["backtest_mase"].drop_nulls().len() > 0
    # beside each forecast, its backtest: folds (a daily origin from the 16th day of the demo's 23),
    # the share of held-out days the model's own intervals covered, and what the intervals were widened by
    total = forecasts.filter(pl.col("agent_id").is_null() & (pl.col("metric") == "cost_usd")).row(
        0, named=True
    )
    assert total["model"] == "holt_winters_damped_weekly" and total["backtest_folds"] >= 5
    assert 0 <= total["backtest_coverage_80"] <= total["backtest_coverage_95"] <= 1
    assert total["interval_widening_80"] >= 0.9 and total["interval_widening_95"] >= 0.9
    # budgets (examples/agentmon.yaml): research-agent's 40 USD runs out, the 150 USD total holds
    budgets = {
        row["agent_id"]: row for row in frame("select * from analytics.budget_burn").iter_rows(named=True)
    }
    assert (
        budgets["research-agent"]["status"] in ("over", "at_risk")
        and budgets["research-agent"]["runs_out_on"]
    )
    assert (
        budgets[None]["budget_usd"] == 150
        and budgets[None]["spend_to_date"] > budgets["research-agent"]["spend_to_date"]
    )
    assert frame("select count(*) as n from analytics.correlations")["n"][0] == 20
    con.close()

    # the library on the same warehouse: empty buckets are explicit
    engine = AnalyticsEngine(DatabaseManager(f"duckdb:///{demo_warehouse['warehouse']}"))
    start = DEMO_END - timedelta(days=40)
    series = engine.get_time_series("runs", start, DEMO_END, "1d", agent_id="support-bot")
    assert series.height == 40 and series.filter(pl.col("n") == 0)["value"].to_list() == [0.0] * (
        40 - DEMO_DAYS
    )
    stats = engine.get_execution_statistics("support-bot")
    assert stats["runs"] == series["value"].sum() and stats["versions"] >= 2
    # what the assets use: one query for every agent's range and one for all run metrics of a
    # window; the same series as one metric at a time
    fixed = AnalyticsEngine(engine.db, fixed=True)
    for agent in ("support-bot", "research-agent", None, "nobody"):
        assert (fixed.first_run(agent), fixed.data_end(agent)) == (
            engine.first_run(agent),
            engine.data_end(agent),
        )
        for granularity, begin in (("1h", DEMO_END - timedelta(days=3)), ("1d", start)):
            for metric in RUN_METRICS:
                one = engine.get_time_series(metric, begin, DEMO_END, granularity, agent_id=agent)
                assert_frame_equal(
                    fixed.get_time_series(metric, begin, DEMO_END, granularity, agent_id=agent), one
                )


def test_the_anomalies_summary_shows_one_line_per_series():
    from datetime import datetime

    from agentmon_pipeline.defs.analytics.assets import strongest_per_series

    t = datetime(2026, 11, 1)
    frame = pl.DataFrame({"bucket_start": [t] * 4, "agent_id": ["a", "a", "a", None], "metric": ["cost_usd", "cost_usd", "runs", "runs"],
                          "score": [5.0, -9.0, 4.5, 6.0]})  # fmt: skip
    top = strongest_per_series(frame)
    assert top.select("agent_id", "metric", "score").rows() == [
        ("a", "cost_usd", -9.0),
        (None, "runs", 6.0),
        ("a", "runs", 4.5),
    ]
