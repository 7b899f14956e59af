"""The Dagster path end to end: drop files, materialize every asset, query the marts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from agentmon_pipeline.config import settings
from tests.conftest import CORPUS, DEMO_END, materialize_all


def query(sql: str):
    con = duckdb.connect(str(settings().warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_drop_run_and_marts_match_what_was_dropped(demo_home):
    result = materialize_all()
    assert result.success
    checks = [
        e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert checks and all(c.passed for c in checks)
    assert {"great_expectations_batch"} <= {c.check_name for c in checks}
    # dbt's unit tests (the models' SQL on fixed inputs) run here, in make test, not in every build
    from agentmon_pipeline.defs.resources import dbt_resource

    unit = dbt_resource.cli(["test", "--select", "test_type:unit"], raise_on_error=False).wait()
    results = unit.get_artifact("run_results.json")["results"]
    assert unit.is_successful() and len(results) >= 3
    assert all(r["unique_id"].startswith("unit_test.") and r["status"] == "pass" for r in results)

    # ledger: loaded + quarantined = lines for every file; the demo's bad file quarantines 4 lines
    assert query("select count(*) from raw.ingested_files where loaded + quarantined <> lines") == [(0,)]
    assert query("select sum(quarantined) from raw.ingested_files") == [(4,)]

    # tokens: marts equal the raw LLM spans, to the token
    raw = query("select sum(input_tokens), sum(output_tokens), count(*) from raw.spans where kind = 'llm'")[0]
    calls = query("select sum(input_tokens), sum(output_tokens), count(*) from marts.fct_llm_calls")[0]
    runs = query(
        "select sum(input_tokens), sum(output_tokens), sum(llm_call_count) from marts.fct_agent_runs"
    )[0]
    assert calls == raw and runs == raw

    # cost: every call of a priced model is computed from its price, to the cent and below
    mismatches = query(
        """
        select count(*) from marts.fct_llm_calls c join marts.model_prices p using (model)
        where abs(c.cost_usd - ((c.input_tokens - c.cached_input_tokens) * p.input_usd_per_mtok
              + c.cached_input_tokens * p.cached_input_usd_per_mtok + c.output_tokens * p.output_usd_per_mtok) / 1e6) > 1e-12
        """
    )
    assert mismatches == [(0,)]
    by_source = dict(query("select cost_source, count(*) from marts.fct_llm_calls group by 1"))
    assert by_source.get("computed", 0) > 0
    unknown = query("select distinct model from marts.fct_llm_calls where cost_source = 'unknown_model'")
    assert unknown == [("local-llama-3-8b",)]  # the demo's self-hosted model has no price: null, not zero
    assert query(
        "select count(*) from marts.fct_llm_calls where cost_source = 'unknown_model' and cost_usd is not null"
    ) == [(0,)]
    assert query("select source from marts.model_prices where model = 'acme-internal-7b'") == [("override",)]
    run_cost = query("select round(sum(cost_usd), 9) from marts.fct_agent_runs")[0][0]
    call_cost = query("select round(sum(cost_usd), 9) from marts.fct_llm_calls where run_id is not null")[0][
        0
    ]
    assert run_cost == call_cost

    # aggregates agree with the runs
    assert query("select sum(runs), sum(failures) from marts.agg_agent_daily") == query(
        "select count(*), count(*) filter (where not is_success) from marts.fct_agent_runs"
    )
    # sub-agent calls roll up into the research-agent run that encloses them
    nested = query(
        """
        select count(*) from marts.fct_llm_calls c join marts.fct_agent_runs r using (trace_id, run_id)
        where c.agent_id = 'web-searcher' and r.agent_id = 'research-agent'
        """
    )[0][0]
    assert nested > 0
    assert query("select count(*) from marts.dim_agents") == [(6,)]
    assert query("select count(*) from marts.dim_agent_versions where agent_id = 'support-bot'")[0][0] >= 2


@pytest.mark.slow
@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_incremental_run_equals_full_refresh(built_demo_home, tmp_path):
    landing = settings().landing_dir
    # a late file: one new trace, and a later version of an existing span (more output tokens)
    trace, span_id, tokens = query(
        "select trace_id, span_id, output_tokens from raw.spans where kind = 'llm' order by span_id limit 1"
    )[0]
    original = query(f"select * from raw.spans where span_id = '{span_id}'")[0]
    late = landing / "late.jsonl"
    late.write_text(
        json.dumps({"trace_id": trace, "span_id": span_id, "parent_span_id": original[2], "name": original[3],
                    "kind": "llm", "start_time": original[5].isoformat(), "end_time": original[6].isoformat(),
                    "model": original[16], "input_tokens": original[18], "output_tokens": tokens + 1000,
                    "agent_id": original[11]}) + "\n"
        + json.dumps({"trace_id": "new-trace", "span_id": "new-run", "name": "run", "kind": "agent",
                      "agent_id": "support-bot", "start_time": "2026-11-19T10:00:00Z", "duration_ms": 1200}) + "\n"
    )  # fmt: skip
    assert materialize_all().success
    assert query("select count(*) from marts.fct_agent_runs where run_id = 'new-run'") == [(1,)]
    assert query(f"select output_tokens from marts.fct_llm_calls where span_id = '{span_id}'") == [
        (tokens + 1000,)
    ]
    # another run without a version on that day: the day's aggregate is replaced, not added a
    # second time (a key of agent, version and day never matches a null version)
    (landing / "later.jsonl").write_text(json.dumps({"trace_id": "newer-trace", "span_id": "newer-run", "name": "run",
        "kind": "agent", "agent_id": "support-bot", "start_time": "2026-11-19T11:00:00Z", "duration_ms": 900}) + "\n")  # fmt: skip
    assert materialize_all().success  # the marts' unique tests hold
    assert query(
        "select runs from marts.agg_agent_daily where agent_id = 'support-bot' and agent_version is null"
    ) == [(2,)]
    incremental = query(
        "select run_id, output_tokens, round(cost_usd, 12) from marts.fct_agent_runs order by all"
    )

    # full refresh on a copy of the warehouse gives the same runs
    for table in ("int_spans_attributed",):
        con = duckdb.connect(str(settings().warehouse_path))
        con.execute(f"drop table intermediate.{table}")
        for mart in ("fct_llm_calls", "fct_tool_calls", "fct_agent_runs"):
            con.execute(f"drop table marts.{mart}")
        con.close()
    assert materialize_all().success
    assert (
        query("select run_id, output_tokens, round(cost_usd, 12) from marts.fct_agent_runs order by all")
        == incremental
    )


@pytest.mark.slow
@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_redrop_under_another_name_adds_nothing(built_demo_home):
    before = query("select count(*), sum(total_tokens) from marts.fct_agent_runs")
    landing = settings().landing_dir
    first = min(landing.glob("spans-*.jsonl"))
    shutil.copy(first, landing / "copy-of-first.jsonl")
    assert materialize_all().success
    assert query("select count(*), sum(total_tokens) from marts.fct_agent_runs") == before
    assert query("select status from raw.ingested_files where file_name = 'copy-of-first.jsonl'") == [
        ("duplicate",)
    ]


def test_the_sensor_asks_the_ledger_and_batches_new_files_into_one_run(home, monkeypatch):
    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.ingest import detect

    sensor = defs.get_sensor_def("landing_sensor")
    landing = settings().landing_dir
    line = '{"trace_id": "t", "span_id": "%s", "name": "x", "start_time": "2026-11-01T00:00:00Z", "duration_ms": 1}\n'
    (landing / "a.jsonl").write_text(line % "a")
    (landing / "b.jsonl").write_text(line % "b")
    with dg.DagsterInstance.ephemeral() as instance:
        ctx = dg.build_sensor_context(instance=instance, cursor=None)
        [request] = [r for r in [sensor(ctx)] if isinstance(r, dg.RunRequest)]
        assert request.tags["agentmon/files"] == "2"  # the run takes every new file
        # with the hashes the sensor computed: the run does not read the files a second time to hash them
        hashes = request.run_config["ops"]["raw_telemetry"]["config"]["hashes"]
        assert sorted(Path(p).name for p in hashes) == ["a.jsonl", "b.jsonl"]
        from agentmon_pipeline.ingest.batch import ingest_landing
        from agentmon_pipeline.storage import connect

        real_sha256 = detect.sha256_of
        monkeypatch.setattr(detect, "sha256_of", lambda path: pytest.fail(f"{path} hashed again"))
        with connect(settings()) as con:
            assert len(ingest_landing(con, settings(), hashes=hashes).files) == 2
            ledger = dict(con.execute("select file_name, sha256 from raw.ingested_files").fetchall())
        monkeypatch.setattr(detect, "sha256_of", real_sha256)
        assert ledger == {name: real_sha256(landing / name) for name in ("a.jsonl", "b.jsonl")}
        # loaded (by this or any other command): the ledger has them, the sensor asks for nothing
        again = sensor(dg.build_sensor_context(instance=instance, cursor=ctx.cursor))
        assert isinstance(again, dg.SkipReason)
        # the same content under another name: nothing to load; new content: one run for it
        shutil.copy(landing / "a.jsonl", landing / "copy.jsonl")
        assert isinstance(
            sensor(dg.build_sensor_context(instance=instance, cursor=ctx.cursor)), dg.SkipReason
        )
        (landing / "c.jsonl").write_text(line % "c")
        third = sensor(dg.build_sensor_context(instance=instance, cursor=ctx.cursor))
        # one run over the daily partitions of the new files' days (their first record's here)
        assert third.tags == {"agentmon/files": "1", "agentmon/first_file": "c.jsonl",
                              "dagster/asset_partition_range_start": "2026-11-01",
                              "dagster/asset_partition_range_end": "2026-11-01"}  # fmt: skip


def test_sensor_waits_for_files_still_being_written(home, monkeypatch):
    from agentmon_pipeline.ingest.landing import scan_landing

    landing = settings().landing_dir
    (landing / "growing.jsonl").write_text("{}\n")
    scan = scan_landing(landing, {}, settle_seconds=10)
    assert scan.new == [] and scan.waiting == 1


def test_otlp_trace_split_across_files_joins_and_counts_tokens_once(home):
    """An agent span in one Collector file, its Vercel AI SDK call (ai.generateText wrapping
    ai.generateText.doGenerate, both with the same tokens) in another: one run, one LLM call."""
    from tests.ingest.test_otlp import T0, otlp_span, request

    trace, agent, wrapper, call = "ab" * 16, "a1" * 8, "b2" * 8, "c3" * 8
    usage = {"ai.model.id": "gpt-4o-mini", "ai.usage.promptTokens": 14, "ai.usage.completionTokens": 20}
    first = request([otlp_span("invoke_agent", trace, agent, {"gen_ai.operation.name": "invoke_agent"}, end=T0 + 10**10)],
                    resource={"service.name": "haiku-bot", "service.version": "3"})  # fmt: skip
    second = request([
        otlp_span("ai.generateText", trace, wrapper, {**usage, "ai.operationId": "ai.generateText"}, parent=agent),
        otlp_span("ai.generateText.doGenerate", trace, call, {**usage, "ai.operationId": "ai.generateText.doGenerate",
                  "gen_ai.response.model": "gpt-4o-mini-2024-07-18"}, parent=wrapper),
    ], resource={"service.name": "haiku-bot", "service.version": "3"})  # fmt: skip
    landing = settings().landing_dir
    (landing / "collector-1.jsonl").write_text(json.dumps(first) + "\n")
    (landing / "collector-2.jsonl").write_text(json.dumps(second) + "\n")
    assert materialize_all().success
    assert query(
        "select run_id, agent_id, agent_version, llm_call_count, input_tokens, output_tokens from marts.fct_agent_runs"
    ) == [(agent, "haiku-bot", "3", 1, 14, 20)]
    assert query("select span_id, model, cost_source from marts.fct_llm_calls") == [
        (call, "gpt-4o-mini-2024-07-18", "computed")
    ]


@pytest.mark.slow
@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_changed_models_rebuild_the_marts_from_raw(built_demo_home):
    """After an upgrade of the dbt models, incremental marts are rebuilt once, not patched."""
    before = query("select sum(input_tokens) from marts.fct_llm_calls")
    con = duckdb.connect(str(settings().warehouse_path))
    con.execute("update marts.fct_llm_calls set input_tokens = 0")  # what older SQL might have left
    con.execute("insert into raw.dbt_build_state values ('models-of-an-older-release', now())")
    con.close()
    assert materialize_all().success
    assert query("select sum(input_tokens) from marts.fct_llm_calls") == before


LANGFUSE = CORPUS / "langfuse_framework_traces"


def langfuse_expected_calls(export: dict) -> dict[str, tuple[str, int, int]]:
    """The LLM calls of a Langfuse export as the framework reported them: Langfuse's own
    usageDetails, with the known differences of the corpus README decided as SPEC §4 says."""
    observations = {o["id"]: o for o in export["observations"]}

    def metadata(o):
        m = o.get("metadata") or {}
        return (
            json.loads(m) if isinstance(m, str) and m.startswith("{") else m if isinstance(m, dict) else {}
        ).get("attributes", {})

    def is_llm(o):
        op = metadata(o).get("ai.operationId", "")
        if op.startswith("ai."):  # Vercel: only the provider call is the LLM call
            return op.endswith((".doGenerate", ".doStream"))
        return (
            o["type"] == "GENERATION" or str(metadata(o).get("openinference.span.kind", "")).upper() == "LLM"
        )

    llm = {oid for oid, o in observations.items() if is_llm(o)}
    wrappers = set()
    for oid in llm:  # an LLM observation with an LLM observation below it wraps that call
        parent = observations[oid].get("parentObservationId")
        while parent:
            if parent in llm:
                wrappers.add(parent)
            parent = observations[parent].get("parentObservationId") if parent in observations else None
    expected = {}
    for oid in llm - wrappers:
        u = observations[oid].get("usageDetails") or {}
        inp, out, total = u.get("input", 0), u.get("output", 0), u.get("total")
        in_details = sum(v for k, v in u.items() if k.startswith(("input_", "prompt_details.")))
        out_details = sum(v for k, v in u.items() if k.startswith(("output_", "completion_details.")))
        if total is not None and inp + out == total:  # details already inside (Gemini's reasoning)
            pass
        else:  # Langfuse took cached input, audio and reasoning out: add them back
            inp, out = inp + in_details, out + out_details
        if total is not None and total > inp + out:  # SPEC §4: the gap is unreported reasoning
            out = total - inp
        expected[oid] = (observations[oid]["model"], inp, out)
    return expected


def test_langfuse_exports_of_every_framework_give_the_reported_calls(home):
    landing = settings().landing_dir
    files = sorted(LANGFUSE.glob("*.trace.json"))
    assert len(files) == 20
    for path in files:
        shutil.copy(path, landing / path.name)
    assert materialize_all().success
    assert query("select count(*), sum(lines), sum(quarantined) from raw.ingested_files") == [(20, 162, 0)]
    for path in files:
        export = json.loads(path.read_text())
        expected = langfuse_expected_calls(export)
        got = {
            span_id: (model, i, o)
            for span_id, model, i, o in query(
                "select span_id, model, input_tokens, output_tokens from marts.fct_llm_calls "
                f"where trace_id = '{export['trace']['id']}'"
            )
        }
        assert got == expected, path.name
    # scores became events
    assert query("select count(*) from marts.fct_events") == [(24,)]


@pytest.mark.slow
@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_pruning_keeps_the_daily_aggregates_through_a_full_refresh(built_demo_home, capsys):
    from agentmon_pipeline.app.cli import main
    from agentmon_pipeline.storage import connect
    from agentmon_pipeline.storage.retention import prune

    daily = "select agent_id, agent_version, bucket_start, runs, total_tokens, round(cost_usd, 9) from marts.agg_agent_daily order by all"
    assert query("select count(distinct bucket_start::date) from marts.agg_agent_daily") == [(3,)]
    before = query(daily)
    with connect(settings()) as con:
        removed = prune(con, 1, now=DEMO_END)  # keep the last day of detail
    assert removed["raw.spans"] > 0 and removed["marts.fct_agent_runs"] > 0
    assert query(
        "select min(started_at) >= ? from marts.fct_agent_runs".replace(
            "?", f"'{DEMO_END.isoformat()}'::timestamptz - interval 1 day"
        )
    ) == [(True,)]
    assert materialize_all().success  # nothing new: the pruned days keep their numbers
    assert query(daily) == before
    con = duckdb.connect(str(settings().warehouse_path))
    con.execute(
        "insert into raw.dbt_build_state values ('models-of-an-older-release', now())"
    )  # forces --full-refresh
    con.close()
    assert materialize_all().success
    assert query(daily) == before
    assert main(["prune", "--days", "3650"]) == 0
    assert "pruned detail older than 3650 days: raw.spans 0" in capsys.readouterr().out


def test_the_sensor_waits_for_an_ingest_run_in_flight_but_not_for_a_dead_one(home, monkeypatch):
    import uuid
    from datetime import timedelta

    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.defs.ingest import sensors

    (settings().landing_dir / "a.jsonl").write_text(
        '{"trace_id": "t", "span_id": "a", "name": "x", "start_time": "2026-11-01T00:00:00Z", "duration_ms": 1}\n'
    )
    sensor = defs.get_sensor_def("landing_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="agentmon_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
            )
        )
        waiting = sensor(dg.build_sensor_context(instance=instance))
        assert (
            isinstance(waiting, dg.SkipReason)
            and "files dropped now join the next run" in waiting.skip_message
        )
        monkeypatch.setattr(sensors, "STALE_AFTER", timedelta(0))  # an `agentmon run` killed long ago
        assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.RunRequest)
