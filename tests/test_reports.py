"""The reports: the snapshot asset, and every query of every Evidence page run against it with
Python's DuckDB, so that a broken query fails here in seconds (the browser test in tests/browser
runs the built site)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.config import project_dir
from agentmon_pipeline.outputs.reports import SNAPSHOT_TABLES

# one worker builds the snapshot (a module fixture) and runs every test that reads it
pytestmark = [pytest.mark.xdist_group("reports"), pytest.mark.slow]

REPORTS = project_dir() / "reports"
PAGES = sorted((REPORTS / "pages").glob("*.md"))
SQL_BLOCK = re.compile(r"```sql (\w+)\n(.*?)```", re.DOTALL)
INPUT = re.compile(r"<(Dropdown|DateRange)\s+([^>]*?)/?>")
ATTR = re.compile(r'(\w+)=(?:\{([^}]*)\}|"([^"]*)"|(\S+))')
INPUT_REF = re.compile(r"\$\{inputs\.(\w+)\.(value|start|end)\}")
QUERY_REF = re.compile(r"\$\{(\w+)\}")


def page_queries(path: Path) -> dict[str, str]:
    return {name: sql for name, sql in SQL_BLOCK.findall(path.read_text())}


def page_inputs(path: Path) -> dict[str, dict]:
    inputs = {}
    for kind, attrs in INPUT.findall(path.read_text()):
        parsed = {m[0]: m[1] or m[2] or m[3] for m in ATTR.findall(attrs)}
        inputs[parsed["name"]] = {"kind": kind, **parsed}
    return inputs


class Page:
    """Runs a page's queries the way Evidence does: `${query}` is the query's SQL as a subquery,
    inputs take their defaults (a Dropdown's defaultValue or first option, a DateRange's span)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self.con, self.path = con, path
        self.queries, self.inputs = page_queries(path), page_inputs(path)

    def resolve(self, name: str) -> str:
        sql = self.queries[name]
        sql = INPUT_REF.sub(lambda m: self.input_value(m[1], m[2]), sql)
        return QUERY_REF.sub(lambda m: f"({self.resolve(m[1])})", sql)

    def input_value(self, name: str, part: str) -> str:
        spec = self.inputs[name]
        if spec["kind"] == "DateRange":
            low, high = self.con.execute(
                f"select min({spec['dates']}), max({spec['dates']}) from ({self.resolve(spec['data'])})"
            ).fetchone()
            return str((low if part == "start" else high).date())
        if spec.get("defaultValue"):
            return spec["defaultValue"]
        return str(
            self.con.execute(
                f"select {spec['value']} from ({self.resolve(spec['data'])}) limit 1"
            ).fetchone()[0]
        )

    def run(self, name: str) -> list[dict]:
        cursor = self.con.execute(self.resolve(name))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="session")
def snapshot(demo_warehouse):
    """The reports snapshot of the shared demo warehouse (tests/conftest.py)."""
    METADATA.update(demo_warehouse["snapshot_metadata"])
    return Path(demo_warehouse["snapshot"])


METADATA: dict = {}


@pytest.fixture(scope="session")
def evidence_db(snapshot):
    """The snapshot as Evidence sees it: every source query of reports/sources/agentmon as a table
    agentmon.<file name>."""
    con = duckdb.connect()
    con.execute(f"attach '{snapshot}' as snap (read_only)")
    con.execute("create schema memory.agentmon")
    con.execute("use snap")
    for source in sorted((REPORTS / "sources" / "agentmon").glob("*.sql")):
        con.execute(f"create table memory.agentmon.{source.stem} as {source.read_text()}")
    con.execute("use memory")
    yield con
    con.close()


def test_the_snapshot_holds_every_table_in_a_format_evidence_reads(snapshot):
    con = duckdb.connect(str(snapshot), read_only=True)
    tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
    types = {
        t for (t,) in con.execute("select distinct data_type from information_schema.columns").fetchall()
    }
    counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in SNAPSHOT_TABLES}
    con.close()
    assert tables == {*SNAPSHOT_TABLES, "snapshot_info"}
    assert types <= {"VARCHAR", "DOUBLE", "BIGINT", "INTEGER", "BOOLEAN", "DATE", "TIMESTAMP"}
    assert all(n >= 1 for n in counts.values())  # an empty table holds one row of nulls
    sources = {p.stem for p in (REPORTS / "sources" / "agentmon").glob("*.sql")}
    assert sources == tables  # every table has its source query, and no source reads a missing table
    # the storage version after the magic bytes: 64 is DuckDB 1.x's format, which Evidence's
    # driver opens; DuckDB 2.0's default (999) it cannot
    header = snapshot.read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_page_query_runs_on_the_snapshot(evidence_db, page):
    runner = Page(evidence_db, page)
    assert runner.queries, f"{page.name} has no queries"
    for name in runner.queries:
        try:
            runner.run(name)
        except duckdb.Error as exc:
            pytest.fail(f"{page.name}, query {name}: {exc}")


def test_the_pages_show_the_demo_findings(evidence_db):
    pages = {p.stem: Page(evidence_db, p) for p in PAGES}
    daily = pages["telemetry"].run("daily")
    assert {r["agent_id"] for r in daily} >= {"support-bot", "research-agent"}
    comparisons = pages["agents"].run("comparisons")
    assert any(r["agent_id"] == "support-bot" and r["candidate_version"] == "1.2" and r["metric"] == "p95_duration_ms"
               and r["verdict"] == "regressed" for r in comparisons)  # fmt: skip
    assert comparisons[0]["verdict"] == "regressed"  # regressions first
    spike = max(pages["telemetry"].run("daily"), key=lambda r: r["cost_usd"] or 0)
    assert spike["agent_id"] == "research-agent"
    assert any(r["verdict"] == "regressed" for r in pages["evaluation"].run("verdicts"))
    assert pages["alerts"].run("counts")[0]["firing"] >= 1
    forecast = pages["performance"].run("forecast")
    assert {"actual", "forecast", "lower 80%", "upper 95%"} <= {r["series"] for r in forecast}
    findings = pages["index"].run("findings")
    assert {"production", "benchmark", "budget"} <= {r["source"] for r in findings}
    # each finding once: a regression or budget alert is the finding itself, not a second row
    assert not [
        r
        for r in findings
        if r["source"] == "alert" and ("regressed" in r["finding"] or "budget" in r["finding"])
    ]
    # the placeholder row of an empty table never shows
    assert pages["alerts"].run("deliveries") == []


def test_the_snapshot_asset_reports_numbers_the_ui_plots(snapshot):
    assert METADATA["tables"] == len(SNAPSHOT_TABLES) and METADATA["rows"] > 1000
    assert METADATA["runs_24h"] > 50 and 0.8 < METADATA["success_rate_24h"] <= 1
    assert METADATA["p95_duration_ms_24h"] > 0 and METADATA["cost_usd_24h"] > 0
    assert METADATA["versions_regressed"] >= 1 and METADATA["alerts_firing"] >= 1
