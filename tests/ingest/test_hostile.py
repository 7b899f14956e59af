"""No value and no line stops ingestion, and nothing outside the landing folder is opened."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.ingest import loader
from agentmon_pipeline.ingest.batch import ingest_landing
from agentmon_pipeline.ingest.loader import ingest_file
from tests.hostile import HOSTILE, good_span, hostile_file_text


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_line_is_quarantined_with_its_reason_and_the_rest_loads(con, tmp_path, name):
    path = tmp_path / f"{name}.jsonl"
    path.write_text(hostile_file_text(name))
    result = ingest_file(con, path, tmp_path / "tmp")
    reason = HOSTILE[name][1]
    assert result.lines == result.loaded + result.quarantined == 2
    assert con.execute("select count(*) from raw.spans where span_id = ?", [f"ok-{name}"]).fetchone()[0] == 1
    if reason is None:
        assert (result.status, result.loaded) == ("loaded", 2)
        return
    assert (result.status, result.quarantined) == ("partial", 1)
    quarantined = con.execute("select line_number, reason from raw.quarantine").fetchall()
    assert len(quarantined) == 1 and quarantined[0][0] == 1 and reason in quarantined[0][1]


def test_a_line_of_ten_megabytes_loads_capped_and_one_of_a_hundred_is_quarantined(con, tmp_path):
    """Parsing a line takes several times its size in memory that cannot spill: a line longer than
    1/16 of MONITORING_INGEST_MEMORY (62.5 MB at the default 1GB) is quarantined with its size, and
    the file's other lines load."""
    path = tmp_path / "big.jsonl"
    with open(path, "w") as handle:
        handle.write(json.dumps(good_span("small")) + "\n")
        handle.write(json.dumps(good_span("long", input="x" * 10_000_000)) + "\n")
        handle.write(json.dumps(good_span("huge", input="x" * 100_000_000)) + "\n")
    result = ingest_file(con, path, tmp_path / "tmp")
    assert (result.status, result.loaded, result.quarantined) == ("partial", 2, 1)
    length = con.execute("select strlen(input) from raw.spans where span_id = 'long'").fetchone()[0]
    assert length == 64 * 1024
    line, reason, kept = con.execute(
        "select line_number, reason, strlen(raw_line) from raw.quarantine"
    ).fetchone()
    assert line == 3 and reason.startswith("line of 100.0 MB, longer than the 62 MB") and kept <= 64 * 1024


def test_content_duckdb_cannot_take_quarantines_the_file_and_the_next_file_loads(home, monkeypatch):
    """Defence in depth: an error no check foresaw, raised by the file's content, quarantines
    that file whole (its transaction rolled back) and the files after it still load."""
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.storage import connect

    landing = settings().landing_dir
    (landing / "a-hostile.jsonl").write_text(json.dumps(good_span("x1")) + "\n")
    (landing / "b-fine.jsonl").write_text(json.dumps(good_span("x2")) + "\n")
    real = loader._ingest_file

    def failing(duck, con, path, tmp_dir, policy, sha256):
        if path.name.startswith("a-"):
            raise duckdb.ConversionException("Conversion Error: a value nobody foresaw")
        return real(duck, con, path, tmp_dir, policy, sha256)

    monkeypatch.setattr(loader, "_ingest_file", failing)
    with connect(settings()) as con:
        batch = ingest_landing(con, settings())
        rows = con.execute(
            "select file_name, status, lines, loaded, quarantined, reason from raw.ingested_files order by 1"
        ).fetchall()
        spans = con.execute("select span_id from raw.spans").fetchall()
    assert [f.status for f in batch.files] == ["quarantined", "loaded"]
    assert rows[0][:5] == ("a-hostile.jsonl", "quarantined", 1, 0, 1)
    assert (
        "could not be ingested (ConversionException: Conversion Error: a value nobody foresaw)" == rows[0][5]
    )
    assert rows[1][:5] == ("b-fine.jsonl", "loaded", 1, 1, 0)
    assert spans == [("x2",)]


def test_symlinks_out_of_the_landing_folder_are_refused_and_never_opened(home, tmp_path):
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.storage import connect

    landing = settings().landing_dir
    elsewhere = tmp_path / "other-team"
    elsewhere.mkdir()
    (elsewhere / "theirs.jsonl").write_text(json.dumps(good_span("theirs")) + "\n")
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    secret.chmod(0o000)  # opening it would fail loudly (unless root): it must never be opened
    (landing / "ours.jsonl").write_text(json.dumps(good_span("ours")) + "\n")
    (landing / "sub").mkdir()
    (landing / "sub" / "inside.jsonl").write_text(json.dumps(good_span("inside")) + "\n")
    os.symlink(elsewhere, landing / "team-dir")
    os.symlink(secret, landing / "key.jsonl")
    os.symlink("/etc/passwd", landing / "passwd.jsonl")
    os.symlink(tmp_path / "missing", landing / "dangling.jsonl")
    os.symlink(landing / "ours.jsonl", landing / "alias.jsonl")  # inside: read once, where it is
    with connect(settings()) as con:
        ingest_landing(con, settings())
        ledger = con.execute(
            "select file_name, status, lines, loaded, reason from raw.ingested_files order by 1"
        ).fetchall()
        spans = sorted(r[0] for r in con.execute("select span_id from raw.spans").fetchall())
        quarantine = con.execute("select count(*) from raw.quarantine").fetchone()[0]
        again = ingest_landing(con, settings())
    assert spans == ["inside", "ours"] and quarantine == 0
    refused = {name: reason for name, status, _, _, reason in ledger if status == "refused"}
    assert set(refused) == {"team-dir", "key.jsonl", "passwd.jsonl", "dangling.jsonl"}
    assert refused["passwd.jsonl"] == "symlink to /etc/passwd, outside the landing folder: not read"
    assert refused["dangling.jsonl"] == "symlink to nowhere, outside the landing folder: not read"
    assert all(lines == loaded == 0 for _, status, lines, loaded, _ in ledger if status == "refused")
    assert not again.files  # recorded once, not on every run
    secret.chmod(0o600)


def test_the_sensor_starts_a_run_for_a_refused_symlink_without_opening_it(tmp_path):
    from agentmon_pipeline.ingest.landing import scan_landing

    landing = tmp_path / "landing"
    landing.mkdir()
    os.symlink("/etc/passwd", landing / "passwd.jsonl")
    scan = scan_landing(landing, {}, 0)
    assert [(item.path.name, item.refused) for item in scan.new] == [("passwd.jsonl", True)]
    assert scan.new[0].sha256.startswith("refused:")
    assert (
        scan_landing(landing, scan.cursor, 0).run_key == scan.run_key
    )  # the same run: Dagster starts it once


def test_a_path_given_to_the_ingest_asset_that_is_a_symlink_out_is_refused(home, tmp_path):
    """The sensor's run names the symlink: the asset records the refusal, it does not read it."""
    from agentmon_pipeline.config import settings
    from agentmon_pipeline.storage import connect

    link = settings().landing_dir / "passwd.jsonl"
    os.symlink("/etc/passwd", link)
    with connect(settings()) as con:
        batch = ingest_landing(con, settings(), only=[str(link)])
    assert [(Path(f.path).name, f.status) for f in batch.files] == [("passwd.jsonl", "refused")]
