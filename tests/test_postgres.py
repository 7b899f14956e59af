"""PostgreSQL as the warehouse, against a real server: runs when AGENTMON_TEST_POSTGRES_URL names
a superuser's pg_url (`.ci/run` starts a throwaway server with .ci/postgres.sh and sets it).
This far: the schemas and the roles of `agentmon db init --roles`; the read-only role cannot write."""

from __future__ import annotations

import os
import uuid

import pytest

from agentmon_pipeline.app.cli import main
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.storage.postgres import connection_kwargs
from tests.engines import run_in_process, same_marts_and_analytics
from tests.pg import throwaway_server


@pytest.fixture(scope="module")
def pg_url():
    """AGENTMON_TEST_POSTGRES_URL when set (.ci/run starts one server for the whole run), else a
    throwaway server of our own, stopped afterwards. These tests never skip."""
    with throwaway_server(os.environ.get("AGENTMON_TEST_POSTGRES_URL")) as url:
        yield url


def test_connection_settings():
    assert connection_kwargs("postgresql://u:p@h/db", ssl=True)["sslmode"] == "require"
    assert "sslmode" not in connection_kwargs("postgresql://u:p@h/db")
    with pytest.raises(UserError, match="expected postgresql://"):
        connection_kwargs("mysql://h/db")


def test_db_init_refuses_duckdb_with_one_line(capsys, monkeypatch):
    monkeypatch.delenv("MONITORING_DB_URL", raising=False)
    assert main(["db", "init", "--roles"]) == 2
    assert "has no roles" in capsys.readouterr().err


def test_roles_a_reader_reads_the_marts_only_and_cannot_write(pg_url, capsys):
    import psycopg

    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"create database {database}")
        for user in ("t_pipeline", "t_analyst"):
            admin.execute(f"drop role if exists {user}")
    db_url = pg_url.rsplit("/", 1)[0] + "/" + database
    assert main(["db", "init", "--roles", "--url", db_url]) == 0
    assert main(["db", "init", "--roles", "--url", db_url]) == 0  # again: nothing breaks
    out = capsys.readouterr().out
    assert "agentmon_reader: select on marts" in out
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("create role t_pipeline login in role agentmon_writer")
        admin.execute("alter role t_pipeline set role agentmon_writer")  # what it creates, the group owns
        admin.execute("create role t_analyst login in role agentmon_reader")
    as_user = lambda user: psycopg.connect(db_url.replace("agentmon@", f"{user}@"), autocommit=True)
    with as_user("t_pipeline") as pipeline:
        pipeline.execute("create table marts.fct_agent_runs (run_id text, cost_usd double precision)")
        pipeline.execute("insert into marts.fct_agent_runs values ('r1', 0.5)")
        pipeline.execute("create table raw.scratch (span_id text, input text)")
        pipeline.execute("insert into raw.scratch values ('s1', 'private prompt')")
        pipeline.execute("insert into raw.ingested_files (load_id, file_path, file_name, sha256, bytes, status, lines, "
                         "loaded, quarantined, ingested_at) values (1, 'a', 'a', 'x', 1, 'loaded', 1, 1, 0, now())")  # fmt: skip
    with as_user("t_analyst") as analyst:
        assert analyst.execute("select run_id, cost_usd from marts.fct_agent_runs").fetchall() == [
            ("r1", 0.5)
        ]
        for statement in ("insert into marts.fct_agent_runs values ('r2', 1)", "delete from marts.fct_agent_runs",
                          "create table marts.mine (x int)", "select * from raw.spans", "select * from raw.scratch",
                          "drop table marts.fct_agent_runs"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute(statement)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"drop database {database} with (force)")
        admin.execute("drop role t_pipeline")
        admin.execute("drop role t_analyst")


def test_db_init_says_why_it_cannot_connect(pg_url, capsys):
    bad = pg_url.rsplit(":", 1)[0] + ":1/postgres"  # nothing listens on port 1
    assert main(["db", "init", "--roles", "--url", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentmon: cannot connect to the PostgreSQL warehouse") and err.count("\n") == 1


def test_copy_moves_a_raw_table_whole(pg_url, con, tmp_path):
    """raw.spans as the loader writes it, into PostgreSQL with one COPY: every value survives
    (nulls and empty strings apart, quotes, newlines, unicode, JSON, time zones)."""
    import json

    import psycopg

    from agentmon_pipeline.storage.postgres import copy_into, create_table_like

    con.execute("""
        insert into raw.spans (trace_id, span_id, name, kind, start_time, end_time, duration_ms, status,
                               input, output, attributes, source_format, load_id, input_tokens, cost_usd)
        values ('t1', 's1', 'chat "quoted", with comma', 'llm', '2026-11-01 10:00:00+00', '2026-11-01 10:00:01.5+00',
                1500, 'ok', e'line one\\nline two', '', '{"k": [1, "ü"], "n": null}', 'native', 1, 812, 0.0031),
               ('t1', 's2', 'tool \\ backslash', 'tool', '2026-11-01 10:00:02+01', '2026-11-01 10:00:03+01',
                1000, 'error', null, null, null, 'native', 1, null, null)
    """)  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as pg:
        table = f"copy_test_{uuid.uuid4().hex[:8]}"
        create_table_like(con, pg, "raw.spans", table)
        assert copy_into(con, pg, "select * from raw.spans", table, tmp_path) == 2
        got = pg.execute(f"select span_id, name, start_time, input, output, attributes, input_tokens, cost_usd "
                         f"from {table} order by span_id").fetchall()  # fmt: skip
        pg.execute(f"drop table {table}")
    s1, s2 = got
    assert s1[1] == 'chat "quoted", with comma' and s1[3] == "line one\nline two" and s1[4] == ""
    assert s1[5] == json.loads('{"k": [1, "ü"], "n": null}') and (s1[6], s1[7]) == (812, 0.0031)
    assert s1[2].isoformat() == "2026-11-01T10:00:00+00:00"
    assert s2[1] == "tool \\ backslash" and s2[3] is None and s2[4] is None and s2[5] is None
    assert s2[2].timestamp() == s1[2].timestamp() - 3600 + 2  # 10:00:02+01 is 09:00:02 UTC


def test_copy_writes_lists_as_arrays(pg_url, con, tmp_path):
    import psycopg

    from agentmon_pipeline.storage.postgres import copy_into, create_table_like

    con.execute("""insert into evals.runs values ('r1', 'qa', 'qa.yaml', 'agent', ['1.0', 'v "2", new', 'a\\b'], '1.0',
                   1, 10, 20, 0, '2026-11-01 10:00:00+00', '2026-11-01 10:01:00+00', 'abc')""")  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as pg:
        table = f"copy_test_{uuid.uuid4().hex[:8]}"
        create_table_like(con, pg, "evals.runs", table)
        assert copy_into(con, pg, "select * from evals.runs", table, tmp_path) == 1
        versions = pg.execute(f"select versions from {table}").fetchone()[0]
        pg.execute(f"drop table {table}")
    assert versions == ["1.0", 'v "2", new', "a\\b"]


def test_migrations_give_postgres_the_tables_duckdb_has(pg_url, con, capsys):
    """The same migrations on both warehouses: every table, every column, the types mapped."""
    import psycopg

    from agentmon_pipeline.storage import SCHEMA_VERSION

    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"create database {database}")
    db_url = pg_url.rsplit("/", 1)[0] + "/" + database
    assert main(["db", "init", "--url", db_url]) == 0
    assert f"schema version {SCHEMA_VERSION} (migrated from 0)" in capsys.readouterr().out
    assert main(["db", "init", "--url", db_url]) == 0
    assert "(up to date)" in capsys.readouterr().out
    query = ("select table_schema, table_name, column_name, {} from information_schema.columns "
             "where table_schema in ('raw', 'evals', 'analytics', 'alerts', 'registry')")  # fmt: skip
    duck = {(s, t, c): k for s, t, c, k in con.execute(query.format("data_type")).fetchall()}
    with psycopg.connect(db_url) as pg:
        pg_cols = {(s, t, c): k for s, t, c, k in pg.execute(query.format("udt_name")).fetchall()}
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"drop database {database} with (force)")
    assert set(pg_cols) == set(duck)
    expected = {"VARCHAR": "varchar", "BIGINT": "int8", "INTEGER": "int4", "DOUBLE": "float8", "BOOLEAN": "bool",
                "TIMESTAMP WITH TIME ZONE": "timestamptz", "DATE": "date", "JSON": "json", "VARCHAR[]": "_varchar"}  # fmt: skip
    mismatched = {k: (duck[k], pg_cols[k]) for k in duck if expected[duck[k]] != pg_cols[k]}
    assert mismatched == {}


# the whole pipeline on both warehouses ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("engines")  # with the Spark test: DuckDB's run of the demo is made once
def test_the_same_demo_gives_the_same_marts_on_duckdb_and_postgresql(pg_url, tmp_path, engine_reference):
    """SPEC's promise for PostgreSQL: the same files give the same marts, row for row and number
    for number, and the same analytics. Each warehouse runs the whole pipeline (ingest by COPY,
    dbt-postgres, analytics and alerts through the warehouse interface, the reports snapshot)."""
    import psycopg

    from agentmon_pipeline.storage.postgres import PgConnection
    from agentmon_pipeline.storage.postgres import connect as pg_connect

    ref = engine_reference
    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"create database {database}")
    db_url = pg_url.rsplit("/", 1)[0] + "/" + database
    pg_checks = run_in_process(tmp_path / "pg", ref.landing, db_url, ref.agents)
    assert pg_checks == ref.checks  # the same checks pass and warn (findings) on both
    assert len(ref.checks) > 40  # dbt's tests, great-expectations, and the analytics' and alerts' own

    pg = PgConnection(pg_connect(db_url))
    compared = same_marts_and_analytics(ref.duckdb_file, pg)
    pg.close()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"drop database {database} with (force)")
    assert compared["marts.fct_agent_runs"] > 500 and compared["marts.fct_llm_calls"] > 500
    for table in ("anomalies", "version_comparisons", "forecasts", "budget_burn"):
        assert compared[f"analytics.{table}"] > 0, table


def test_a_postgres_url_configures_dbt_and_hides_the_password(monkeypatch, tmp_path):
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.storage.profiles import dbt_environment

    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path))
    monkeypatch.setenv("MONITORING_DB_URL", "postgresql://pipe%40line:s3cr%2Ft@db.internal:6543/agentmon")
    monkeypatch.setenv("MONITORING_DB_SSL", "true")
    s = settings()
    assert s.backend == "postgres" and s.warehouse_path is None
    assert s.warehouse_label == "postgresql://pipe%40line:***@db.internal:6543/agentmon"
    env = dbt_environment(s)
    assert env["AGENTMON_DBT_PROFILE_TARGET"] == "postgres"
    assert (env["AGENTMON_PG_HOST"], env["AGENTMON_PG_PORT"], env["AGENTMON_PG_DBNAME"]) == (
        "db.internal",
        "6543",
        "agentmon",
    )
    assert (env["AGENTMON_PG_USER"], env["AGENTMON_PG_PASSWORD"]) == ("pipe@line", "s3cr/t")
    assert env["AGENTMON_PG_SSLMODE"] == "require" and env["PGTZ"] == "UTC"
    monkeypatch.setenv("MONITORING_DB_URL", "mysql://db/agentmon")
    with pytest.raises(UserError, match="expected duckdb:///<absolute path>, postgresql://"):
        settings()


def test_placeholders_change_only_how_parameters_are_marked():
    from agentmon_pipeline.storage.postgres import placeholders

    assert (
        placeholders("select * from t where a = ? and b = $name")
        == "select * from t where a = %s and b = %(name)s"
    )
    # quoted text and comments keep their ? and $; every % is doubled for psycopg
    assert placeholders("select '50%', 'why?', '$x' -- a ?\n, x % 2, \"a?b\" from t where c = ?") == (
        "select '50%%', 'why?', '$x' -- a ?\n, x %% 2, \"a?b\" from t where c = %s"
    )
    assert placeholders("select $start::timestamptz, 'it''s ?'") == "select %(start)s::timestamptz, 'it''s ?'"


def test_the_sql_both_engines_read_runs_on_postgres_as_written(pg_url):
    """What evaluations, analytics and alerts write runs on PostgreSQL unchanged: no translation,
    the parameters marked as DuckDB marks them, the results fetched as DuckDB's are."""
    import duckdb

    from agentmon_pipeline.storage import transaction
    from agentmon_pipeline.storage.engines import time_bucket
    from agentmon_pipeline.storage.postgres import PgConnection
    from agentmon_pipeline.storage.postgres import connect as pg_connect

    con = PgConnection(pg_connect(pg_url))
    duck = duckdb.connect()
    try:
        for engine in (con, duck):
            sql = ("select percentile_cont(0.5) within group (order by x)::double precision as median, "
                   "count(*) filter (where x > $low) as high, '50%' as literal, "
                   f"{time_bucket(engine, '15 minutes', '$at::timestamptz')} as bucket "
                   "from (select unnest(array[1, 2, 3, 4]) as x) as t")  # fmt: skip
            median, high, literal, bucket = engine.execute(
                sql, {"low": 2, "at": "2026-11-29 10:44:59+00"}
            ).fetchone()
            assert (median, high, literal) == (2.5, 2, "50%")
            assert bucket.isoformat() == "2026-11-29T10:30:00+00:00"
        con.execute("create temp table t (k varchar, v double precision)")
        assert con.execute("insert into t values (?, ?), (?, ?)", ["a", 1.5, "b", None]).fetchone() == (2,)
        with pytest.raises(RuntimeError), transaction(con):
            with transaction(con):  # joins the outer one: the outer one rolls back both
                con.execute("insert into t values ('c', 3)")
            raise RuntimeError
        frame = con.sql("select k, v, now() as at from t order by k").pl()
        assert frame["k"].to_list() == ["a", "b"] and frame["v"].to_list() == [1.5, None]
        assert str(frame.schema["at"]) == "Datetime(time_unit='us', time_zone='UTC')"
    finally:
        con.close()
        duck.close()


def test_an_empty_or_unreachable_postgres_warehouse_is_one_line(pg_url, monkeypatch, tmp_path, capsys):
    import psycopg

    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"create database {database}")
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path))
    monkeypatch.setenv("MONITORING_DB_URL", pg_url.rsplit("/", 1)[0] + "/" + database)
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "no warehouse at postgresql://" in err and "run `agentmon run`" in err and err.count("\n") == 1
    monkeypatch.setenv("MONITORING_DB_URL", pg_url.rsplit(":", 1)[0] + ":1/postgres")  # nothing listens there
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentmon: cannot connect to the PostgreSQL warehouse") and err.count("\n") == 1
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"drop database {database} with (force)")


def test_prune_records_the_pruned_rows_in_the_ledger_on_postgresql(pg_url, tmp_path, monkeypatch):
    import json
    from datetime import UTC, datetime, timedelta

    import psycopg

    from agentmon_pipeline.config import settings
    from agentmon_pipeline.ingest.loader import ingest_file
    from agentmon_pipeline.storage import connect
    from agentmon_pipeline.storage.retention import prune

    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"create database {database}")
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MONITORING_DB_URL", pg_url.rsplit("/", 1)[0] + "/" + database)
    old, new = (datetime.now(UTC) - timedelta(days=d) for d in (40, 2))
    path = tmp_path / "f.jsonl"
    path.write_text("".join(json.dumps({"trace_id": "t", "span_id": sid, "name": "x", "start_time": t.isoformat(),
                                        "duration_ms": 1}) + "\n" for sid, t in (("old", old), ("new", new))))  # fmt: skip
    with connect(settings()) as con:
        ingest_file(con, path, tmp_path)
        assert prune(con, 30)["raw.spans"] == 1
        assert con.execute("select loaded, pruned from raw.ingested_files").fetchall() == [(2, 1)]


def test_benchmark_verdicts_keep_their_mde_on_postgresql(pg_url, tmp_path, monkeypatch):
    """analytics.eval_regressions with the columns a later migration added (mde, clusters), written by
    the same code as on DuckDB."""
    import psycopg

    from agentmon_pipeline.config import settings
    from agentmon_pipeline.evaluation.regression import MetricComparison
    from agentmon_pipeline.evaluation.store import save_comparisons
    from agentmon_pipeline.storage import connect

    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"create database {database}")
    monkeypatch.setenv("AGENTMON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MONITORING_DB_URL", pg_url.rsplit("/", 1)[0] + "/" + database)
    verdict = MetricComparison("qa", "1.0", "1.1", "exact_match.rate", "exact_match", "rate", "paired_t_clustered",
                               True, 0.8, 0.79, 400, -0.01, -0.05, 0.03, 0.6, 0.6, "inconclusive", mde=0.0874,
                               clusters=20)  # fmt: skip
    with connect(settings()) as con:
        save_comparisons(con, "qa", "run1", [verdict])
        row = con.execute("select verdict, mde, clusters, n from analytics.eval_regressions").fetchall()
    assert row == [("inconclusive", 0.0874, 20, 400)]
