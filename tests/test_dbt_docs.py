"""The marts' documentation (dbt_project/models/marts/<model>.yml) against the marts as built: every
column of every mart has a description, and every documented column exists. Builds nothing of its
own: dbt's parsed manifest and the shared demo warehouse (tests/conftest.py)."""

from __future__ import annotations

import json

import duckdb
import pytest

from agentmon_pipeline.app.runner import prepare_dbt_manifest


def documented_marts() -> dict[str, dict[str, str]]:
    """Per model under models/marts/: its documented columns and their descriptions."""
    manifest = json.loads(prepare_dbt_manifest().read_text())
    return {
        node["name"]: {column["name"]: column["description"] for column in node["columns"].values()}
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/marts/")
    }


@pytest.mark.slow
@pytest.mark.xdist_group("reports")  # the worker that builds the shared demo warehouse: the other goes on
def test_every_mart_column_is_documented(demo_warehouse):
    marts = documented_marts()
    assert len(marts) >= 13, sorted(marts)  # the manifest's marts were found
    with duckdb.connect(demo_warehouse["warehouse"], read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' order by table_name, ordinal_position"
        ).fetchall()
    built: dict[str, list[str]] = {}
    for table, column in rows:
        built.setdefault(table, []).append(column)

    problems = [
        f"{mart}: not in the demo warehouse's marts schema" for mart in sorted(marts) if mart not in built
    ]
    for mart, documented in sorted(marts.items()):
        columns = built.get(mart, [])
        problems += [f"{mart}.{c}: no description" for c in columns if not documented.get(c, "").strip()]
        problems += [f"{mart}.{c}: documented, but the mart has no such column" for c in documented
                     if columns and c not in columns]  # fmt: skip
    assert not problems, "dbt_project/models/marts/<mart>.yml:\n" + "\n".join(problems)


@pytest.mark.slow
@pytest.mark.xdist_group("reports")
def test_every_duckdb_query_the_docs_show_runs_on_the_demo(demo_warehouse):
    """The queries of the README (`.sql('…')`) and of the docs' ```sql blocks (but PostgreSQL's
    page, whose statements are PostgreSQL's) run on the demo's warehouse as shown."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pages = [
        root / "README.md",
        *sorted(p for p in (root / "docs").glob("*.md") if p.name != "postgresql.md"),
    ]
    queries = []
    for page in pages:
        text = page.read_text()
        queries += [(page.name, q) for q in re.findall(r"\.sql\('([^']+)'\)", text)]
        for block in re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL):
            queries += [(page.name, q.strip()) for q in block.split(";") if q.strip()]
    assert len(queries) >= 4 and any(name == "README.md" for name, _ in queries)
    failed = []
    with duckdb.connect(demo_warehouse["warehouse"], read_only=True) as con:
        for name, query in queries:
            try:
                con.execute(query).fetchall()
            except duckdb.Error as exc:
                failed.append(f"{name}: {query[:80]}: {str(exc).splitlines()[0]}")
    assert failed == []
