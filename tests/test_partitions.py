"""Daily partitions and backfills: the day a landing file is of, a run over days loading only their
files, and a backfill that rebuilds those days' rows of the marts and nothing else."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from datetime import date

import dagster as dg
import duckdb
import pytest

from agentmon_pipeline.config import settings
from agentmon_pipeline.devtools.bench import day_marts as _marts  # the day-by-day marts, without load ids
from agentmon_pipeline.ingest.landing import day_range, file_day, partition_day
from tests.conftest import materialize_all

D = date.fromisoformat


def test_a_file_is_of_the_day_its_folder_or_its_first_record_says(tmp_path):
    landing = tmp_path / "landing"
    write = lambda rel, text: (
        (landing / rel).parent.mkdir(parents=True, exist_ok=True) or (landing / rel).write_text(text)
    )
    write("dt=2026-11-03/anything.jsonl", '{"name": "x", "start_time": "2026-10-01T00:00:00Z"}\n')
    write("exports/dt=2026-11-04/part-0.jsonl", "not even json\n")
    write("spans.jsonl", '\n{"trace_id": "t", "start_time": "2026-11-05T23:59:59.999-01:00"}\n')
    write("metrics.jsonl", '{"type": "metric", "name": "cpu", "value": 1, "time": "2026-11-06T10:00:00Z"}\n')
    write("nanos.jsonl", '{"trace_id": "t", "start_time_unix_nano": 1762819200000000000}\n')
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "1762905600000000000"}]}]}]}
    write("otlp.jsonl", json.dumps(otlp) + "\n")
    write(
        "langfuse.json",
        json.dumps({"trace": {"timestamp": "2026-11-13T08:00:00Z"}, "observations": []}) + "\n",
    )
    write("pretty.json", json.dumps(otlp, indent=2))  # a pretty-printed document: no day in its first line
    write("dt=2026-13-40/bad-folder.jsonl", '{"start_time": "2026-11-01T00:00:00Z"}\n')
    write("no-time.jsonl", '{"type": "event", "name": "x"}\n')
    with gzip.open(landing / "zipped.jsonl.gz", "wt") as f:
        f.write('{"start_time": "2026-11-14T00:00:00Z"}\n')
    days = {p.name: file_day(p, landing) for p in landing.rglob("*") if p.is_file()}
    assert days == {
        "anything.jsonl": D("2026-11-03"), "part-0.jsonl": D("2026-11-04"),
        "spans.jsonl": D("2026-11-06"),  # its UTC day
        "metrics.jsonl": D("2026-11-06"), "nanos.jsonl": D("2025-11-11"), "otlp.jsonl": D("2025-11-12"),
        "langfuse.json": D("2026-11-13"), "pretty.json": None, "bad-folder.jsonl": None, "no-time.jsonl": None,
        "zipped.jsonl.gz": D("2026-11-14"),
    }  # fmt: skip
    # no day, or a day after today: today's; older than the first partition: the first's
    first, today = D("2020-01-01"), D("2026-11-29")
    assert partition_day(None, first, today) == today
    assert partition_day(D("9999-01-01"), first, today) == today
    assert partition_day(D("2019-05-01"), first, today) == first
    assert day_range([landing / "spans.jsonl", landing / "dt=2026-11-03" / "anything.jsonl"], landing, first, today) == (
        D("2026-11-03"), D("2026-11-06"))  # fmt: skip
    assert day_range([], landing, first, today) == (today, today)


def assert_same(left: dict[str, list], right: dict[str, list]) -> None:
    """The same rows; sums of the same doubles added in another order may differ in the last bit."""
    assert left.keys() == right.keys()
    for table, rows in left.items():
        assert len(rows) == len(right[table]), table
        for x, y in zip(rows, right[table], strict=True):
            same = all(math.isclose(a, b, rel_tol=1e-12) if isinstance(a, float) and isinstance(b, float) else a == b
                       for a, b in zip(x, y, strict=True))  # fmt: skip
            assert same, f"{table}: {x} != {y}"


def materialize_days(first: str, last: str, reload: bool) -> dg.ExecuteInProcessResult:
    """The ingest and the marts over the days first..last, as `agentmon backfill` runs them."""
    from agentmon_pipeline.defs.ingest.assets import raw_model_prices, raw_telemetry
    from agentmon_pipeline.defs.partitions import RELOAD, range_tags
    from agentmon_pipeline.defs.registry.assets import agent_registry
    from agentmon_pipeline.defs.resources import dbt_resource
    from agentmon_pipeline.defs.transform.assets import agentmon_dbt_models

    return dg.materialize(
        [raw_telemetry, raw_model_prices, agent_registry, agentmon_dbt_models],
        resources={"dbt": dbt_resource}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        tags={**range_tags(D(first), D(last)), **({RELOAD: "true"} if reload else {})},
    )  # fmt: skip


@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_a_backfill_of_loaded_days_rebuilds_their_rows_and_nothing_else(built_demo_home):
    """Three days the warehouse already has: nothing new to load, the marts as they were. The
    reload is real: a row of those days changed behind dbt's back comes back as the raw data says;
    a row outside them stays as it is."""
    s = settings()
    before = _marts(s.warehouse_path)
    con = duckdb.connect(str(s.warehouse_path))
    loads = con.execute("select count(*) from raw.ingested_files").fetchone()[0]
    inside, outside = (con.execute(f"select run_id from marts.fct_agent_runs where started_at::date = '{day}' "
                                   "order by run_id limit 1").fetchone()[0] for day in ("2026-11-18", "2026-11-19"))  # fmt: skip
    # a column nothing downstream reads, so that the aggregates stay comparable
    con.execute(
        "update marts.fct_agent_runs set session_id = 'changed' where run_id in (?, ?)", [inside, outside]
    )
    con.close()
    result = materialize_days("2026-11-16", "2026-11-18", reload=True)
    assert result.success
    partitions = sorted(m.partition for m in result.asset_materializations_for_node("raw_telemetry")
                        if m.asset_key == dg.AssetKey(["raw", "spans"]))  # fmt: skip
    assert partitions == ["2026-11-16", "2026-11-17", "2026-11-18"]  # the days' partitions of raw/*
    after = _marts(s.warehouse_path)
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    assert (
        con.execute("select count(*) from raw.ingested_files").fetchone()[0] == loads
    )  # nothing loaded twice
    sessions = dict(con.execute("select run_id, session_id from marts.fct_agent_runs where run_id in (?, ?)",
                                [inside, outside]).fetchall())  # fmt: skip
    con.close()
    assert sessions[inside] != "changed" and sessions[outside] == "changed"  # rebuilt inside the days only
    untouched = {**after, "fct_agent_runs": [row for row in after["fct_agent_runs"] if row[0] != outside]}
    assert_same(
        untouched,
        {**before, "fct_agent_runs": [row for row in before["fct_agent_runs"] if row[0] != outside]},
    )


@pytest.mark.xdist_group("built-demo-home")  # one worker builds it, the other is not kept waiting
def test_a_backfill_of_a_missing_day_adds_exactly_that_day(built_demo_home, tmp_path):
    """One day's file was not there when the others loaded: a backfill of that day loads it and
    only it (a file of another day, new too, waits), and the marts become those of one full run."""
    s = settings()
    reference = _marts(s.warehouse_path)  # every demo day, loaded in one run
    landing = s.landing_dir
    held = tmp_path / "held"
    held.mkdir()
    shutil.move(landing / "spans-2026-11-18.jsonl", held / "spans-2026-11-18.jsonl")
    s.warehouse_path.unlink()
    assert materialize_all().success  # the run without that day
    without = _marts(s.warehouse_path)
    assert len(without["fct_agent_runs"]) < len(reference["fct_agent_runs"])
    (landing / "dt=2026-11-18").mkdir()
    shutil.move(held / "spans-2026-11-18.jsonl", landing / "dt=2026-11-18" / "spans.jsonl")
    (landing / "later.jsonl").write_text(json.dumps({
        "trace_id": "f", "span_id": "s", "name": "invoke_agent x", "kind": "agent", "agent_id": "x",
        "start_time": "2026-11-19T12:00:00Z", "duration_ms": 5}) + "\n")  # fmt: skip
    assert materialize_days("2026-11-18", "2026-11-18", reload=True).success
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    names = [
        r[0] for r in con.execute("select file_name from raw.ingested_files order by load_id").fetchall()
    ]
    con.close()
    assert names[-1] == "spans.jsonl" and "later.jsonl" not in names  # that day's file, and only it
    assert_same(_marts(s.warehouse_path), reference)


def test_backfill_says_what_is_wrong_with_its_days_in_one_line(home, capsys):
    from agentmon_pipeline.app.cli import main

    assert main(["backfill", "--from", "2026-11-10", "--to", "2026-11-01"]) == 2
    assert "--from 2026-11-10 is after --to 2026-11-01" in capsys.readouterr().err
    assert main(["backfill", "--from", "2019-12-31", "--to", "2020-01-02"]) == 2
    assert "before the first daily partition, 2020-01-01" in capsys.readouterr().err
    assert main(["backfill", "--from", "2026-11-10", "--to", "9999-01-01"]) == 2
    assert "after today" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["backfill", "--from", "last week", "--to", "2026-11-01"])


def test_the_marts_of_a_backfill_launched_in_the_ui_reload_its_days():
    """A backfill of raw/* days and the marts (as the UI launches it) runs the marts, which are not
    partitioned, in a run of their own: that run finds the days in the backfill. A run the
    sensor or `agentmon run` started reloads nothing."""
    import time
    from types import SimpleNamespace

    from dagster._core.execution.backfill import PartitionBackfill

    from agentmon_pipeline.definitions import defs
    from agentmon_pipeline.defs.partitions import RELOAD, range_tags, reload_days

    graph = defs.resolve_asset_graph()
    keys = [
        key for key in graph.get_all_asset_keys() if key.path[0] == "raw" and graph.get(key).is_partitioned
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id="bf1", asset_graph=graph, partition_names=["2026-11-16", "2026-11-17", "2026-11-18"],
            asset_selection=[*keys, dg.AssetKey(["marts", "fct_agent_runs"])], backfill_timestamp=time.time(), tags={},
            dynamic_partitions_store=instance, all_partitions=False, title=None, description=None, run_config=None,
        )  # fmt: skip
        instance.add_backfill(backfill)
        run = lambda tags: SimpleNamespace(run=SimpleNamespace(tags=tags), instance=instance)
        assert reload_days(run({"dagster/backfill": "bf1"})) == (D("2026-11-16"), D("2026-11-18"))
        days = range_tags(D("2026-11-01"), D("2026-11-02"))
        assert reload_days(run({**days, RELOAD: "true"})) == (
            D("2026-11-01"),
            D("2026-11-02"),
        )  # agentmon backfill
        assert reload_days(run({**days, "dagster/backfill": "bf1"})) == (D("2026-11-01"), D("2026-11-02"))
        assert reload_days(run({"dagster/partition": "2026-11-05"})) == (
            D("2026-11-05"),
            D("2026-11-05"),
        )  # one day, from the UI
        assert reload_days(run(days)) is None  # the sensor's run, agentmon run
        assert reload_days(run({})) is None
