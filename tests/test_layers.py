"""The package's layers, as docs/development.md describes them: which engine a warehouse is is
asked only in storage/, Dagster is imported only by the Dagster definitions, and config.py reads
settings without importing anything of agentmon above it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "agentmon_pipeline"
ENGINE_BRANCH = re.compile(r"isinstance\(.*DuckDBPyConnection|settings\.backend|backend ==")


def _modules(*, outside: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if not any(p.relative_to(PACKAGE).as_posix().startswith(prefix) for prefix in outside)]  # fmt: skip


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_storage_package_asks_which_engine_the_warehouse_is():
    found = [f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for p in _modules(outside=("storage/",))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if ENGINE_BRANCH.search(line)]  # fmt: skip
    assert found == []


def test_only_the_dagster_definitions_import_dagster():
    found = [f"{p.relative_to(PACKAGE)}: {name}"
             for p in _modules(outside=("defs/", "definitions.py"))
             for name in sorted(_imports(p)) if name.split(".")[0] in {"dagster", "dagster_dbt", "dagster_duckdb"}]  # fmt: skip
    assert found == []


def test_config_imports_nothing_of_agentmon_but_its_errors():
    ours = {name for name in _imports(PACKAGE / "config.py") if name.startswith("agentmon_pipeline")}
    assert ours == {"agentmon_pipeline.errors"}
