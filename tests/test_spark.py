"""Apache Spark as the warehouse (MONITORING_DB_URL=spark://local[2]): pyspark's own Spark in the
test process, with Java 17. The statements the rest of agentmon writes run as Spark SQL; the same
demo gives the same marts and analytics on Spark as on DuckDB.

One Spark warehouse per process (storage.spark.session): every test here shares one home, in one
test worker."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from agentmon_pipeline.config import Settings, settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage.spark import _spark_sql, session
from tests.engines import run_in_process, same_marts_and_analytics

pytestmark = pytest.mark.xdist_group(
    "engines"
)  # one Spark warehouse per process; the DuckDB reference shared with PostgreSQL's test

URL = "spark://local[2]"


# Spark tuned for small data and short runs (agentmon's own knobs, see docs/spark.md): the JIT's
# first tier only, no adaptive re-planning, one shuffle partition, no whole-stage code to compile
# per query. Less than half the JVM's CPU of the defaults. Files read in blocks of 1 MB: the
# reference's larger files are parsed by several executors' tasks, as a cluster would.
TUNED = {
    "AGENTMON_SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "AGENTMON_SPARK_CONF": "spark.sql.adaptive.enabled=false spark.sql.shuffle.partitions=1 "
    "spark.sql.codegen.wholeStage=false spark.sql.files.maxPartitionBytes=1m",
    "AGENTMON_SPARK_SHUFFLE_PARTITIONS": "1",
}


@pytest.fixture(scope="session")  # not module: the slow test runs first, the others later
def spark_home(tmp_path_factory):
    for name, value in TUNED.items():  # before the session starts; for the whole test process
        os.environ.setdefault(name, value)
    return tmp_path_factory.mktemp("spark-home")


@pytest.fixture
def spark_con(spark_home, monkeypatch):
    """A connection to the tests' Spark warehouse, with only what these tests use (the migrations
    run in the whole-pipeline test)."""
    from agentmon_pipeline.storage.spark import SparkConnection

    monkeypatch.setenv("AGENTMON_HOME", str(spark_home))
    monkeypatch.setenv("MONITORING_DB_URL", URL)
    con = SparkConnection(session(settings()))
    # their own tables and sequence: the whole-pipeline test may run before or after these, in
    # this warehouse, and its load ids must start at 1 as DuckDB's do
    for statement in (
        "create schema if not exists alerts",
        "create sequence if not exists alerts.t_seq start 1",
    ):
        con.execute(statement)
    yield con
    con.close()


def test_the_sql_is_marked_and_typed_for_spark():
    sql, positional, sequences = _spark_sql(
        "select x::double precision, $start::timestamptz, '?' as q, \"a b\" from t where k = ? and j = ? "
        "-- a ?\n and v = cast(null as varchar) and w = nextval('raw.load_id_seq')"
    )
    assert sql == (
        "select x::double, :start::timestamp, '?' as q, `a b` from t where k = :p0 and j = :p1 "
        "-- a ?\n and v = cast(null as string) and w = :nextval_raw_load_id_seq"
    )
    assert positional == ("p0", "p1") and sequences == ("raw.load_id_seq",)
    assert _spark_sql("create table t (v varchar[], j json, n varchar(3))")[0] == (
        "create table t (v array<string>, j string, n varchar(3))"
    )


def test_update_delete_and_sequences_rewrite_the_table(spark_con):
    con = spark_con
    con.execute("create table if not exists alerts.t_rewrite (k varchar not null, v double precision, at timestamptz, "
                "primary key (k))")  # fmt: skip
    con.execute("delete from alerts.t_rewrite")
    now = dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC)
    con.execute("insert into alerts.t_rewrite values (?, ?, ?), (?, ?, ?)", ["a", 1.0, now, "b", None, now])
    assert con.execute("update alerts.t_rewrite set v = coalesce(v, 0) + ?, at = ? where k = ?",
                       [2.5, now + dt.timedelta(hours=1), "b"]).fetchone() == (1,)  # fmt: skip
    assert con.execute("update alerts.t_rewrite set v = 0 where k = 'nobody'").fetchone() == (0,)
    rows = con.execute("select k, v, at from alerts.t_rewrite order by k").fetchall()
    assert rows == [("a", 1.0, now), ("b", 2.5, now + dt.timedelta(hours=1))]
    assert con.execute("delete from alerts.t_rewrite where v > $v", {"v": 2}).fetchone() == (1,)
    con.register("gone", __import__("polars").DataFrame({"k": ["a"]}))
    con.execute("delete from alerts.t_rewrite t using gone n where t.k = n.k")
    assert con.execute("select count(*) from alerts.t_rewrite").fetchone() == (0,)
    first = con.execute("select nextval('alerts.t_seq')").fetchone()[0]
    assert con.execute("select nextval('alerts.t_seq')").fetchone()[0] == first + 1
    assert con.execute("select max(value) from alerts.t_seq").fetchone() == (
        first + 1,
    )  # written, not only counted
    names = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                        "where table_schema = 'alerts'").fetchall()}  # fmt: skip
    assert "t_rewrite" in names
    frame = con.sql("select k, v from alerts.t_rewrite").pl()
    assert frame.height == 0 and frame.columns == ["k", "v"]


def test_one_process_one_spark_warehouse(spark_con, tmp_path):
    other = Settings(**{**settings().__dict__, "home": tmp_path})
    with pytest.raises(UserError, match="one process, one Spark warehouse"):
        session(other)


def test_a_spark_url_configures_dbt(spark_home, monkeypatch):
    from agentmon_pipeline.storage.profiles import dbt_environment

    monkeypatch.setenv("AGENTMON_HOME", str(spark_home))
    monkeypatch.setenv("MONITORING_DB_URL", "spark://spark-master:7077")
    env = dbt_environment(settings())
    assert env["AGENTMON_DBT_PROFILE_TARGET"] == "spark"
    assert env["AGENTMON_SPARK_MASTER"] == "spark://spark-master:7077"
    assert env["AGENTMON_SPARK_WAREHOUSE"] == str(spark_home / "spark" / "warehouse")
    monkeypatch.setenv("MONITORING_DB_URL", "spark://")
    with pytest.raises(UserError, match="spark://local"):
        settings()


def test_the_same_demo_gives_the_same_marts_on_duckdb_and_spark(spark_home, engine_reference):
    """The issue's promise for Spark: the same files give the same marts, row for row, and the same
    analytics. Each warehouse runs the whole pipeline (ingest, dbt-duckdb or dbt-spark, analytics
    and alerts through the warehouse interface, the reports snapshot)."""
    from pyspark.sql import SparkSession

    from agentmon_pipeline.storage.spark import SparkConnection

    ref = engine_reference
    spark_checks = run_in_process(spark_home, ref.landing, URL, ref.agents)
    assert spark_checks == ref.checks  # the same checks pass and warn (findings) on both
    assert len(ref.checks) > 40
    compared = same_marts_and_analytics(ref.duckdb_file, SparkConnection(SparkSession.getActiveSession()))
    assert compared["marts.fct_agent_runs"] > 500 and compared["marts.fct_llm_calls"] > 500
    for table in ("anomalies", "version_comparisons", "forecasts", "budget_burn"):
        assert compared[f"analytics.{table}"] > 0, table


def test_a_spark_url_without_pyspark_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "pyspark.sql", None)  # as if pyspark were not installed
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path))
    monkeypatch.setenv("MONITORING_DB_URL", URL)
    with pytest.raises(UserError, match=r"pip install -e '\.\[spark\]'"):
        session(settings())


@pytest.mark.spark_pipeline  # a second Spark process: make test-spark
def test_a_second_process_on_a_local_spark_warehouse_gets_one_line(spark_con, spark_home):
    """Derby, the embedded catalog, admits one process: the second one is told so in one line."""
    import subprocess
    import sys

    code = "from agentmon_pipeline.app.cli import main; raise SystemExit(main(['status']))"
    env = {
        **os.environ,
        "AGENTMON_HOME": str(spark_home),
        "MONITORING_DB_URL": URL,
        "AGENTMON_LOCK_TIMEOUT": "0",
    }
    # this process holds the metastore (not the warehouse lock): the second one meets Derby's refusal
    done = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is in use by another process" in done.stderr
    assert "Traceback" not in done.stderr and "SQLQueryContextLogger" not in done.stderr


def _random_traces(seed: int = 5):
    """Traces a walk can get wrong: bushy trees, chains deeper than the 256 levels walked, agent
    spans inside agent spans, agent ids on spans above, between and below them, llm spans
    wrapping llm spans, parents not in the data, a span that is its own parent, a parent cycle."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    kinds = ["agent", "llm", "tool", "chain"]
    rows = []
    for t in range(60):
        size = 300 if t < 2 else int(rng.integers(1, 40))
        for i in range(size):
            if i == 0:
                parent = None if t % 7 else "missing"  # a root, or a parent that never arrived
            elif t < 2:
                parent = f"s{i - 1}"  # a chain
            else:
                parent = f"s{int(rng.integers(0, i))}"
            agent = f"a{int(rng.integers(0, 3))}" if rng.random() < 0.35 else None
            rows.append((f"t{t}", f"s{i}", parent, kinds[int(rng.integers(0, 4))], agent,
                         None if agent is None else agent.upper(), None if agent is None else f"v{t % 3}"))  # fmt: skip
    rows += [("self", "x", "x", "agent", "a", "A", "1"), ("self", "y", "x", "llm", None, None, None),
             ("cycle", "p", "q", "chain", None, None, None), ("cycle", "q", "p", "agent", "b", "B", "2"),
             ("cycle", "c", "p", "llm", None, None, None)]  # fmt: skip
    names = ["trace_id", "span_id", "parent_span_id", "kind", "agent_id", "agent_name", "agent_version"]
    return pl.DataFrame(rows, schema=names, orient="row")


def _walk_sql(recursive: bool) -> str:
    """int_spans_attributed's walk over a table `spans`, as dbt renders it for DuckDB (recursive)
    or for Spark (pointer doubling)."""
    import jinja2

    from agentmon_pipeline.config import project_dir

    env = jinja2.Environment()
    env.globals.update(var=lambda name, default=None: default, string_type=lambda: "varchar")
    macros = env.from_string((project_dir() / "dbt_project" / "macros" / "span_walk.sql").read_text()).module
    walk = macros.default__span_walk() if recursive else macros.spark__span_walk()
    return f"""{"with recursive" if recursive else "with"} nodes as (
        select spans.*, parents.span_id is not null as has_parent, parents.kind as parent_kind
        from spans left join spans as parents on parents.trace_id = spans.trace_id
            and parents.span_id = spans.parent_span_id and parents.span_id <> spans.span_id
    ), {walk}
    select trace_id, span_id, root_span_id, outer_agent_span_id, nearest_agent_span_id, enclosing_llm_span_id,
           ctx_agent_id, ctx_agent_name, ctx_agent_version, ctx_from_agent, depth
    from walk"""


def test_the_spark_walk_attributes_every_span_as_the_recursive_walk_does(spark_con):
    """Spark 4.0 cannot plan int_spans_attributed's recursive CTE; its pointer-doubling walk gives
    the same rows as DuckDB's recursive one on traces built to break it."""
    import duckdb

    spans = _random_traces()
    duck = duckdb.connect()
    duck.register("spans", spans.to_arrow())
    expected = duck.sql(_walk_sql(recursive=True)).pl()
    spark_con.register("spans", spans)
    got = spark_con.sql(_walk_sql(recursive=False)).pl()
    order = ["trace_id", "span_id"]
    assert expected.height > 1500 and expected["depth"].max() == 256
    assert got.sort(order).cast({"depth": expected.schema["depth"]}).equals(expected.sort(order))
