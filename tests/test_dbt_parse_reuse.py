"""A process that builds more than once hands dbt the parse it already has, and parses again as
soon as anything the parse read changed: a file of the project, the profiles, an environment
variable they name. On a project of one model, so each parse takes a second."""

from __future__ import annotations

import pytest

from agentmon_pipeline.defs.transform.assets import _PARSED, _parsed_project

PROFILES = """
tiny:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('TINY_DUCKDB_PATH', ':memory:') }}"
"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nprofile: tiny\nconfig-version: 2\n"
    )
    (tmp_path / "profiles.yml").write_text(PROFILES)
    (tmp_path / "models" / "one.sql").write_text("select 1 as x\n")
    monkeypatch.setenv("TINY_DUCKDB_PATH", str(tmp_path / "a.duckdb"))
    monkeypatch.chdir(tmp_path)
    where = ["--no-use-colors", "--project-dir", str(tmp_path), "--profiles-dir", str(tmp_path),
             "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "target")]  # fmt: skip
    saved = dict(_PARSED)
    yield lambda args=("build",): _parsed_project(where, tmp_path, tmp_path, list(args))
    _PARSED.clear()
    _PARSED.update(saved)


def test_the_parse_is_reused_until_what_it_read_changes(tiny, tmp_path, monkeypatch):
    first = tiny()
    assert first is not None and "model.tiny.one" in first.nodes
    assert tiny() is first  # nothing changed: no parse
    (tmp_path / "models" / "two.sql").write_text("select 2 as y\n")
    second = tiny()
    assert second is not first and "model.tiny.two" in second.nodes  # a new model
    monkeypatch.setenv("TINY_DUCKDB_PATH", str(tmp_path / "b.duckdb"))
    assert tiny() is not second  # a variable the profiles name
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")
    third = tiny()
    assert tiny() is third  # a variable nothing names changes nothing
    assert tiny(("build", "--vars", "{a: 1}")) is None  # --vars: the build parses with them itself


def test_a_project_that_does_not_parse_is_left_to_the_build(tiny, tmp_path):
    (tmp_path / "models" / "broken.sql").write_text("select {{ ref('nowhere') }}\n")
    assert tiny() is None  # the build parses it again and reports why, as it always has
