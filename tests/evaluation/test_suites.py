"""Suites as users write them: loading errors, the runner, the reference suites' verdicts, the
CLI from outside the repository, and the Python API giving the same numbers as YAML."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from agentmon_pipeline.app.cli import main
from agentmon_pipeline.config import settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.evaluation import BenchmarkSuite, QualityEvaluator, TestCase
from agentmon_pipeline.evaluation.compare import AgentComparator
from agentmon_pipeline.evaluation.runner import run_suite
from agentmon_pipeline.evaluation.suite import load_suite

AGENT = """
import time

def answer(question, *, version, case):
    if "boom" in question:
        raise ValueError("exploded")
    if "slow" in question:
        time.sleep(2)
    if version == "2" and case.id.endswith(("0", "1", "2")):
        return "wrong"
    return {"output": question.upper(), "usage": {"input_tokens": 10, "output_tokens": 5}, "model": "gpt-4o"}
"""


def user_suite(folder: Path, cases: int = 60, extra: str = "") -> Path:
    """A suite outside the repository, with its agent module beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_agent.py").write_text(AGENT)
    rows = [{"id": f"c{i:02d}", "input": f"question {i}", "expected": f"QUESTION {i}"} for i in range(cases)]
    (folder / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = folder / "mine.yaml"
    suite.write_text(textwrap.dedent("""\
        name: mine
        dataset: cases.jsonl
        agent: my_agent:answer
        versions: ["1", "2", "3"]      # 3 answers as 1 does
        concurrency: 3
        evaluators:
          - {name: exact_match}
          - {name: latency_ms}
        """) + extra)  # fmt: skip
    return suite


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("colour: red\n", r"mine.yaml: colour: unknown key; known keys: agent, agent_id"),
        ("regression: {alpha: 2}\n", r"regression.alpha: expected a number between 0 and 1"),
        ("regression: {alpah: 0.1}\n", r"regression.alpah: unknown key"),
        ("repeats: 0\n", r"repeats: expected a number >= 1"),
    ],
)
def test_suite_mistakes_name_the_file_and_key(tmp_path, edit, message):
    with pytest.raises(UserError, match=message):
        load_suite(user_suite(tmp_path, extra=edit))


def test_dataset_mistakes_name_the_line(tmp_path):
    path = user_suite(tmp_path)
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": 1}\n{"id": "a", "input": 2}\n')
    with pytest.raises(UserError, match=r"cases.jsonl line 2: case id 'a' is used twice"):
        load_suite(path)
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": 1}\nnot json\n')
    with pytest.raises(UserError, match=r"cases.jsonl line 2: not valid JSON"):
        load_suite(path)
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": 1}\n')
    path.write_text(path.read_text().replace("{name: exact_match}", "{name: exact_mtch}"))
    with pytest.raises(UserError, match=r"evaluators\[0\]: unknown evaluator 'exact_mtch'"):
        load_suite(path)


def test_a_dataset_puts_cases_in_clusters(tmp_path):
    suite = user_suite(tmp_path, cases=4)
    rows = [{"id": "a", "input": "x", "cluster": "refunds"}, {"id": "b", "input": "y", "cluster": 7},
            {"id": "c", "input": "z"}]  # fmt: skip
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_suite(suite).clusters == {"a": "refunds", "b": "7"}
    (tmp_path / "cases.jsonl").write_text(
        json.dumps({"id": "a", "input": "x", "cluster": ["refunds"]}) + "\n"
    )
    with pytest.raises(UserError, match=r"cases.jsonl line 1: `cluster` must be a string or a whole number"):
        load_suite(suite)


def test_runner_records_errors_timeouts_latency_and_usage(tmp_path):
    path = user_suite(tmp_path, cases=4, extra="timeout_s: 0.5\n")
    (tmp_path / "cases.jsonl").write_text(
        '{"id": "ok", "input": "fine", "expected": "FINE"}\n{"id": "err", "input": "boom"}\n'
        '{"id": "late", "input": "slow one"}\n'
    )
    run = run_suite(load_suite(path), ["1"])
    calls = {c.call.case_id: c.call for c in run.calls}
    assert calls["ok"].output == "FINE" and (calls["ok"].input_tokens, calls["ok"].output_tokens) == (10, 5)
    assert (calls["err"].error_type, calls["err"].error_message) == ("ValueError", "exploded")
    assert calls["late"].error_type == "TimeoutError" and calls["late"].latency_ms == 500
    exact = run.results.filter(evaluator="exact_match").sort("case_id")
    assert exact["score"].to_list() == [0.0, 0.0, 1.0]  # err, late, ok: failed calls score 0
    assert exact["error"].to_list() == ["ValueError", "TimeoutError", None]


def test_reference_suites_show_the_regressions_their_agents_contain():
    verdicts = {}
    for name in ("support-qa", "math-word-problems", "summaries-replay"):
        suite = load_suite(name)
        run = run_suite(suite)
        for c in AgentComparator(suite.regression).compare(
            run.results, suite.evaluators, suite.versions, name
        ):
            verdicts[(name, c.candidate, c.metric)] = c.verdict
    # quality regressions where the agents were made worse, and nowhere else
    assert verdicts[("support-qa", "1.1", "normalized_match.rate")] == "regressed"
    assert verdicts[("support-qa", "1.2", "normalized_match.rate")] in ("unchanged", "inconclusive")
    assert verdicts[("math-word-problems", "2.1", "numeric_close.rate")] == "regressed"
    assert verdicts[("math-word-problems", "2.2", "numeric_close.rate")] in ("unchanged", "inconclusive")
    assert verdicts[("summaries-replay", "v2", "rouge_l.mean")] == "regressed"
    # the slow versions are flagged on latency (3x), and 2.2 on its extra tokens
    assert verdicts[("support-qa", "1.2", "latency_ms.p95")] == "regressed"
    assert verdicts[("math-word-problems", "2.2", "latency_ms.p95")] == "regressed"
    assert verdicts[("math-word-problems", "2.2", "tokens.mean")] == "regressed"
    assert verdicts[("support-qa", "1.1", "error.rate")] in ("unchanged", "inconclusive")


def test_user_suite_outside_the_repository_runs_and_compares_from_the_cli(home, tmp_path, capsys):
    path = user_suite(tmp_path / "elsewhere", cases=60)
    assert main(["eval", "run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "exact_match.rate" in out and "regressed" in out
    # 2 answers "wrong" on the 18 of 60 cases whose id ends in 0, 1 or 2
    assert (
        main(["eval", "compare", str(path), "--baseline", "1", "--candidate", "2", "--format", "json"]) == 1
    )
    rows = {r["metric"]: r for r in json.loads(capsys.readouterr().out)}
    exact = rows["exact_match.rate"]
    assert exact["verdict"] == "regressed" and exact["n"] == 60
    assert exact["effect"] == pytest.approx(-18 / 60) and exact["ci_low"] < -0.3 < exact["ci_high"]
    assert {"metric", "verdict", "effect", "ci_low", "ci_high", "p_value", "p_adjusted", "n"} <= set(exact)
    assert exact["test"] == "mcnemar_mid_p" and 0.05 < exact["mde"] < exact["ci_high"] - exact["ci_low"]
    assert main(["eval", "compare", str(path), "--baseline", "1", "--candidate", "3", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("mine,1,3,exact_match.rate,")
    assert main(["eval", "compare", str(path), "--baseline", "1", "--candidate", "1"]) == 2
    # one run per case: what more repeats would buy is unknown
    assert main(["eval", "power", str(path), "--repeats", "3"]) == 2
    assert "has one run per case, so its within-case noise is unknown" in capsys.readouterr().err
    # what was stored: runs, results, verdicts, and the calls as benchmark spans under the agent
    db = duckdb.connect(str(settings().warehouse_path), read_only=True)
    assert db.execute("select count(*), sum(calls) from evals.runs").fetchone() == (1, 180)
    assert db.execute("select count(*) from evals.results").fetchone()[0] == 360
    assert db.execute(
        "select verdict from analytics.eval_regressions where metric = 'exact_match.rate'"
    ).fetchone() == ("regressed",)
    assert db.execute("select count(*) from analytics.eval_regressions where mde > 0 and clusters is null"
                      ).fetchone() == (4,)  # fmt: skip
    spans = db.execute(
        """select agent_id, agent_version, count(*) filter (where kind = 'agent'),
                  sum(input_tokens) filter (where kind = 'llm')
           from raw.spans where attributes ->> '$."agentmon.source"' = 'benchmark' group by all order by 2"""
    ).fetchall()
    assert spans == [("mine", "1", 60, 600), ("mine", "2", 60, 420), ("mine", "3", 60, 600)]
    db.close()


def test_power_of_a_stored_suite_with_clusters_and_repeats(home, tmp_path, capsys):
    """`agentmon eval power SUITE`: from the latest stored run, each metric's MDE (as its verdict
    carries it), the power at an effect and the cases needed; clusters from the dataset."""
    path = user_suite(tmp_path, cases=60, extra="repeats: 2\n")
    rows = [{"id": f"c{i:02d}", "input": f"question {i}", "expected": f"QUESTION {i}", "cluster": f"topic {i // 6}"}
            for i in range(60)]  # fmt: skip
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "run", str(path)]) == 0
    assert "60 in 10 clusters" in capsys.readouterr().out
    assert (
        main(["eval", "compare", str(path), "--baseline", "1", "--candidate", "2", "--format", "json"]) == 1
    )
    exact = {r["metric"]: r for r in json.loads(capsys.readouterr().out)}["exact_match.rate"]
    assert (exact["test"], exact["clusters"], exact["verdict"]) == ("paired_t_clustered", 10, "regressed")
    assert main(["eval", "power", str(path), "--metric", "exact_match", "--effect", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "Holm over the metrics of each candidate (0.025 for one metric alone)" in out
    [line] = [x for x in out.splitlines() if x.startswith("2 ")]
    cells = line.split()
    assert cells[1:6] == ["exact_match.rate", "60", "in", "10", "clusters"]
    assert float(cells[7]) == pytest.approx(exact["mde"], abs=1e-4) and cells[8] == "0.1000"
    # the agent is deterministic: its repeats agree, so more of them buy nothing
    assert (
        main(
            ["eval", "power", str(path), "--metric", "exact_match.rate", "--effect", "0.1", "--repeats", "5"]
        )
        == 0
    )
    [again] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("2 ")]
    assert again.split()[6:] == ["5", *cells[7:]]
    assert main(["eval", "power", str(path), "--metric", "bleu"]) == 2
    assert (
        "suite mine has no metric 'bleu'; its metrics: exact_match.rate, latency_ms.p95"
        in capsys.readouterr().err
    )


def test_compare_without_stored_results_says_what_to_do(home, tmp_path, capsys):
    path = user_suite(tmp_path)
    assert main(["eval", "compare", str(path), "--baseline", "1", "--candidate", "2"]) == 2
    assert "run `agentmon eval run" in capsys.readouterr().err
    assert main(["eval", "power", str(path)]) == 2
    assert "no stored run of suite mine with all its versions" in capsys.readouterr().err
    path.write_text(path.read_text().replace('versions: ["1", "2", "3"]', 'versions: ["1"]'))
    assert main(["eval", "power", str(path)]) == 2
    assert "suite mine has one version" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "agentmon_pipeline.app.cli", "eval", "run", "no-such-suite"],
                          check=False, capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no suite named" in proc.stderr


def test_python_api_gives_the_numbers_of_the_yaml_suite(tmp_path):
    path = user_suite(tmp_path, cases=30)
    yaml_suite = load_suite(path)
    yaml_run = run_suite(yaml_suite)
    from my_agent import answer  # the suite's folder is on sys.path once it is loaded

    suite = BenchmarkSuite(agent=answer, versions=["1", "2", "3"])
    suite.add_evaluator("quality", QualityEvaluator(metrics=("exact_match",)))
    for case in yaml_suite.cases:
        suite.add_test_case(TestCase(test_id=case.id, input_data=case.input, expected_output=case.expected))
    results = suite.run()
    yaml_exact = AgentComparator().compare(yaml_run.results, yaml_suite.evaluators[:1], ["1", "2"])[0]
    [api_exact] = [
        c for c in results.comparisons if c.metric == "quality.exact_match.rate" and c.candidate == "2"
    ]
    assert (api_exact.effect, api_exact.p_value, api_exact.verdict) == (
        yaml_exact.effect,
        yaml_exact.p_value,
        yaml_exact.verdict,
    )
    summary = {(s["version"], s["evaluator"]): s for s in results.summaries}
    assert summary[("2", "quality.exact_match")]["pass_rate"] == pytest.approx(21 / 30)
    out = results.export(tmp_path / "leaderboard.csv", "leaderboard")
    assert out.read_text().splitlines()[0].startswith("version,role,quality.exact_match.rate")


def test_suites_kept_elsewhere_are_found_by_name(tmp_path, monkeypatch, capsys):
    """AGENTMON_SUITES_DIR: your suites, outside the repository."""
    import shutil

    from agentmon_pipeline.config import project_dir
    from agentmon_pipeline.evaluation.suite import find_suite, list_suites

    shutil.copy(project_dir() / "evals" / "suites" / "support-qa.yaml", tmp_path / "my-qa.yaml")
    monkeypatch.setenv("AGENTMON_SUITES_DIR", str(tmp_path))
    assert list_suites() == [tmp_path / "my-qa.yaml"]
    assert find_suite("my-qa") == tmp_path / "my-qa.yaml"
    with pytest.raises(UserError, match="no suite named 'support-qa'"):
        find_suite("support-qa")


def test_a_suite_reruns_only_when_what_it_measures_changed(home, tmp_path):
    """`agentmon run` reruns a suite when its file, dataset or agent code changed (fingerprint)."""
    from agentmon_pipeline.evaluation.service import run_and_record
    from agentmon_pipeline.evaluation.store import why_due
    from agentmon_pipeline.storage import connect

    path = user_suite(tmp_path / "s", cases=5)
    due = lambda: why_due(con, load_suite(path))
    with connect(settings()) as con:
        assert due() == "never run with all its versions"
    run_and_record(path, ["1", "2"])  # a subset of its versions is not a run of the suite
    with connect(settings()) as con:
        assert due() == "never run with all its versions"
    run_and_record(path)
    with connect(settings()) as con:
        assert due() is None
        for changed in (path.parent / "cases.jsonl", path.parent / "my_agent.py", path):
            before = changed.read_text()
            changed.write_text(
                before + ("\n" if changed.suffix != ".jsonl" else '{"id": "new", "input": "x"}\n')
            )
            assert "changed since its run of" in due(), changed.name
            changed.write_text(before)
            assert due() is None


def test_each_version_goes_first_as_often_as_the_others(tmp_path):
    """Within a case the versions are called one after the other; the first call meets a colder
    cache. Their order rotates from case to case, so that identical versions are not measured
    apart by the order (a fixed order made the later one +6.6% slower, p 1e-4)."""
    from agentmon_pipeline.evaluation.runner import run_agent_calls

    suite = load_suite(user_suite(tmp_path, cases=30, extra="concurrency: 1\n"))
    calls = run_agent_calls(suite, ["1", "2", "3"])
    first = {}
    for record in calls:  # in the order they were called (concurrency 1)
        first.setdefault(record.call.case_id, record.version)
    assert [list(first.values()).count(v) for v in ("1", "2", "3")] == [10, 10, 10]
