"""Analytics through Dagster on the demo data: the planted findings are found, the tables are
filled, and the findings are WARN checks."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from agentmon_pipeline.analytics.db import DatabaseManager
from agentmon_pipeline.analytics.engine import AnalyticsEngine
from agentmon_pipeline.config import settings
from agentmon_pipeline.demo import SPIKE_DAYS_BEFORE_END, generate_demo
from tests.conftest import DEMO_END


@pytest.mark.slow
def test_demo_findings_are_found_and_stored(home, tmp_path, monkeypatch):
    from agentmon_pipeline.defs.analytics.assets import analytics_assets
    from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
    from agentmon_pipeline.defs.resources import dbt_resource
    from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

    config = tmp_path / "agentmon.yaml"
    config.write_text("budgets:\n  monthly_usd: 5\n  agents:\n    support-bot: 1000\n")
    monkeypatch.setenv("AGENTMON_CONFIG", str(config))
    generate_demo(
        settings().landing_dir, days=23, agents=2, seed=3, end=DEMO_END
    )  # support-bot, research-agent
    result = dg.materialize(
        [raw_telemetry, raw_model_prices, agentmon_dbt_models, *analytics_assets],
        resources={"dbt": dbt_resource}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
    )  # fmt: skip
    assert result.success
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"}  # fmt: skip
    assert not checks["no_version_regressions"].passed
    assert checks["no_version_regressions"].severity == dg.AssetCheckSeverity.WARN

    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
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
    # budgets: the total is small enough to run out; support-bot's is not
    budgets = {
        row["agent_id"]: row for row in frame("select * from analytics.budget_burn").iter_rows(named=True)
    }
    assert budgets[None]["status"] in ("over", "at_risk") and budgets[None]["runs_out_on"] is not None
    assert budgets["support-bot"]["status"] == "ok" and budgets["support-bot"]["runs_out_on"] is None
    assert frame("select count(*) as n from analytics.correlations")["n"][0] == 20
    con.close()

    # the library on the same warehouse: empty buckets are explicit
    engine = AnalyticsEngine(DatabaseManager())
    start = DEMO_END - timedelta(days=40)
    series = engine.get_time_series("runs", start, DEMO_END, "1d", agent_id="support-bot")
    assert series.height == 40 and series.filter(pl.col("n") == 0)["value"].to_list() == [0.0] * 17
    stats = engine.get_execution_statistics("support-bot")
    assert stats["runs"] == series["value"].sum() and stats["versions"] >= 2
