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
