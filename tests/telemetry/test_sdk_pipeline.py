"""Issue 7's "done when" for the SDK: an agent instrumented with it writes files that the landing
sensor picks up and the pipeline ingests, with no secret and no email address in the warehouse,
and the marts count what the agent recorded."""

from __future__ import annotations

import dagster as dg
import duckdb
from agentmon_sdk import TelemetryCollector

from agentmon_pipeline.config import settings
from tests.ingest.test_redaction import found_in_warehouse

PLANTED = {
    "email": "jane.doe@example.com",
    "openai_key": "sk-proj-Zq8xR2mN7vL4kP1tY6wB3cJ9",
    "card": "4111 1111 1111 1111",
    "bearer_token": "Bearer e1f2a3b4c5d6e7f8a9b0c1d2",
}


class OrderNotFound(Exception):
    pass


def support_agent(collector: TelemetryCollector, ticket: int) -> str:
    """A small agent, instrumented the way docs/sdk.md shows."""
    with collector.trace("answer_ticket", agent_id="sdk-bot", agent_version="1.0", session_id=f"s{ticket}",
                         input=f"Ticket from {PLANTED['email']}: where is order {ticket}?"):  # fmt: skip
        with collector.span("lookup_order", kind="tool", tool_name="lookup_order") as tool:
            if ticket % 10 == 9:
                raise OrderNotFound(f"order {ticket} not found")
            tool.set(output={"card_on_file": PLANTED["card"], "status": "shipped"})
        collector.record_llm_call(
            "gpt-4o-mini",
            input_tokens=400 + ticket,
            output_tokens=50,
            duration_ms=320,
            provider="openai",
            input=f"system: use key {PLANTED['openai_key']} and header {PLANTED['bearer_token']}",
            output=f"Your order {ticket} has shipped; we wrote to {PLANTED['email']}.",
        )
        return "shipped"


def test_an_instrumented_agent_lands_in_the_marts_without_secrets(home):
    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
    from agentmon_pipeline.defs.resources import dbt_resource
    from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

    landing = settings().landing_dir
    collector = TelemetryCollector(landing_dir=landing, flush_interval_s=0.05, metrics_interval_s=0.05)
    collector.start()
    collector.metrics.counter("tickets_total", labels=["agent_id"]).inc(20, agent_id="sdk-bot")
    for ticket in range(20):
        try:
            support_agent(collector, ticket)
        except OrderNotFound:
            pass
    collector.record_event(
        "user_feedback", {"comment": f"great, mail me at {PLANTED['email']}"}, agent_id="sdk-bot"
    )
    collector.record_metric("user_satisfaction", 4.6, labels={"agent_id": "sdk-bot"})
    collector.stop()
    assert collector.stats["dropped"] == 0 and collector.stats["export_errors"] == 0

    sensor = defs.get_sensor_def("landing_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        requests = [
            r for r in [sensor(dg.build_sensor_context(instance=instance))] if isinstance(r, dg.RunRequest)
        ]
        assert requests, "the sensor saw no file"
        for request in requests:
            result = dg.materialize([raw_telemetry, raw_model_prices, agentmon_dbt_models], instance=instance,
                                    resources={"dbt": dbt_resource}, run_config=request.run_config)  # fmt: skip
            assert result.success

    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    q = lambda sql: con.execute(sql).fetchall()
    assert q("select sum(quarantined) from raw.ingested_files") == [(0,)]
    assert q("select count(*), count(*) filter (where not is_success), sum(llm_call_count), sum(tool_call_count) "
             "from marts.fct_agent_runs where agent_id = 'sdk-bot'") == [(20, 2, 18, 20)]  # fmt: skip
    assert q(
        "select sum(input_tokens), sum(output_tokens) from marts.fct_llm_calls where agent_id = 'sdk-bot'"
    ) == [(sum(400 + t for t in range(20) if t % 10 != 9), 18 * 50)]
    assert q("select error_type from marts.fct_agent_runs where not is_success") == [("OrderNotFound",)] * 2
    assert q("select count(*) from marts.fct_llm_calls where cost_source = 'computed'") == [(18,)]
    metrics = {name for (name,) in q("select distinct name from marts.fct_metrics")}
    assert {"tickets_total", "user_satisfaction", "process_memory_rss_bytes", "system_cpu_percent"} <= metrics
    assert q("select count(*) from marts.fct_events where name = 'user_feedback'") == [(1,)]
    redacted = q("select input from raw.spans where kind = 'llm' limit 1")[0][0]
    con.close()
    assert "[REDACTED:openai_key]" in redacted and "[REDACTED:bearer_token]" in redacted
    assert found_in_warehouse(PLANTED) == []


def test_rotation_makes_several_whole_files_the_pipeline_loads(home):
    from tests.test_pipeline import materialize_all, query

    collector = TelemetryCollector(landing_dir=settings().landing_dir, rotate_bytes=300, performance=False)
    for i in range(30):
        collector.record_tool_call("t", duration_ms=float(i))
        collector.flush()
    collector.stop()
    files = sorted(settings().landing_dir.glob("*.jsonl"))
    assert len(files) >= 5 and not list(settings().landing_dir.glob(".*"))
    assert materialize_all().success
    assert query("select count(*), sum(lines), sum(loaded) from raw.ingested_files") == [(len(files), 30, 30)]
    assert query("select count(*) from marts.fct_tool_calls") == [(30,)]
