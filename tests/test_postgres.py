"""PostgreSQL as the warehouse, against a real server: runs when AGENTMON_TEST_POSTGRES_URL names
a superuser's URL (`.ci/run` starts a throwaway server with .ci/postgres.sh and sets it).
This far: the schemas and the roles of `agentmon db init --roles`; the read-only role cannot write."""

from __future__ import annotations

import os
import uuid

import pytest

from agentmon_pipeline.cli import main
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.postgres import connection_kwargs

URL = os.environ.get("AGENTMON_TEST_POSTGRES_URL")
needs_server = pytest.mark.skipif(not URL, reason="AGENTMON_TEST_POSTGRES_URL is not set (.ci/run sets it)")


def test_connection_settings():
    assert connection_kwargs("postgresql://u:p@h/db", ssl=True)["sslmode"] == "require"
    assert "sslmode" not in connection_kwargs("postgresql://u:p@h/db")
    with pytest.raises(UserError, match="expected postgresql://"):
        connection_kwargs("mysql://h/db")


def test_db_init_refuses_duckdb_with_one_line(capsys, monkeypatch):
    monkeypatch.delenv("MONITORING_DB_URL", raising=False)
    assert main(["db", "init", "--roles"]) == 2
    assert "DuckDB has no roles" in capsys.readouterr().err


@needs_server
def test_roles_a_reader_reads_the_marts_only_and_cannot_write(capsys):
    import psycopg

    database = f"agentmon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(URL, autocommit=True) as admin:
        admin.execute(f"create database {database}")
        for user in ("t_pipeline", "t_analyst"):
            admin.execute(f"drop role if exists {user}")
    db_url = URL.rsplit("/", 1)[0] + "/" + database
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
        pipeline.execute("create table raw.spans (span_id text, input text)")
        pipeline.execute("insert into raw.spans values ('s1', 'private prompt')")
    with as_user("t_analyst") as analyst:
        assert analyst.execute("select run_id, cost_usd from marts.fct_agent_runs").fetchall() == [("r1", 0.5)]
        for statement in ("insert into marts.fct_agent_runs values ('r2', 1)", "delete from marts.fct_agent_runs",
                          "create table marts.mine (x int)", "select * from raw.spans", "drop table marts.fct_agent_runs"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute(statement)
    with psycopg.connect(URL, autocommit=True) as admin:
        admin.execute(f"drop database {database} with (force)")
        admin.execute("drop role t_pipeline")
        admin.execute("drop role t_analyst")


@needs_server
def test_db_init_says_why_it_cannot_connect(capsys):
    bad = URL.rsplit(":", 1)[0] + ":1/postgres"  # nothing listens on port 1
    assert main(["db", "init", "--roles", "--url", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentmon: cannot connect to the PostgreSQL warehouse") and err.count("\n") == 1
