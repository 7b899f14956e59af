"""The `agentmon` command. User errors are one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from agentmon_pipeline.config import load_config_file, project_dir, settings
from agentmon_pipeline.errors import UserError
from agentmon_pipeline.home import demo_written, ensure_home, mark_demo_home


def _end(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _demo_agents(value: str) -> int:
    from agentmon_pipeline.devtools.demo import AGENTS

    number = _positive(value)
    if number > len(AGENTS):
        raise argparse.ArgumentTypeError(f"{number}: the demo has {len(AGENTS)} agents at most")
    return number


def cmd_demo(args: argparse.Namespace) -> int:
    from agentmon_pipeline.devtools.demo import generate_demo

    s = ensure_home()
    written = demo_written(s)
    if written is not None:
        # a second demo over the first would double its traffic (its runs are new ids at new times)
        window = f" ({written['start']} to {written['end']} UTC)" if written.get("start") else ""
        print(f"{s.home} already holds the demo{window}: nothing written. For a fresh demo, remove the "
              f"home (rm -rf {s.home}) or use another (AGENTMON_HOME=<folder>), then run agentmon demo again.")  # fmt: skip
        return 0
    summary = generate_demo(s.landing_dir, days=args.days, agents=args.agents, seed=args.seed, end=args.end)
    wrote = {"start": f"{summary.start:%Y-%m-%d %H:%M}", "end": f"{summary.end:%Y-%m-%d %H:%M}", "days": args.days,
             "agents": args.agents, "seed": args.seed, "files": len(summary.files), "spans": summary.spans}  # fmt: skip
    for line in mark_demo_home(s, wrote):
        print(line)
    print(
        f"wrote {len(summary.files)} files to {s.landing_dir}: {summary.spans} spans in {summary.runs} agent runs, "
        f"{summary.metrics} metric points, {summary.events} events, {summary.bad_lines} deliberately bad lines "
        f"({summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC)"
    )
    print("next: agentmon run")
    return 0


def check_config(s) -> dict:
    """Every section of agentmon.yaml, checked by the feature it configures: a mistake fails the
    command now, naming the file and the key, not a step of the run later."""
    from agentmon_pipeline.alerting.rules import parse_alerts
    from agentmon_pipeline.analytics.budgets import parse_budgets
    from agentmon_pipeline.evaluation.schedule import parse_schedule
    from agentmon_pipeline.ingest.redaction import parse_redaction

    data = load_config_file(s)
    path = s.config_file or "agentmon.yaml"
    for section, parse in (("suites", parse_schedule), ("budgets", parse_budgets), ("alerts", parse_alerts),
                           ("redaction", parse_redaction)):  # fmt: skip
        parse(data.get(section), path)
    return data


def _ready_home():
    """The home a pipeline run uses, its configuration checked, and the ingest's memory setting
    (one that cannot work says so now, not at the first big file)."""
    from agentmon_pipeline.ingest.limits import ingest_memory

    s = ensure_home()
    check_config(s)
    ingest_memory()
    return s


def cmd_run(args: argparse.Namespace) -> int:
    from agentmon_pipeline.app import runstate
    from agentmon_pipeline.ingest.landing import settle_seconds

    started = time.monotonic()  # the command's own time: Dagster's and dbt's start-up included
    s = _ready_home()
    idle = None if args.force else runstate.nothing_to_do(s, settle_seconds())
    if idle is not None:  # answered from the ledger: Dagster and dbt are not even imported
        print(idle.render())
        return 0
    from agentmon_pipeline.app.runner import run_pipeline

    runstate.forget(s)
    summary = run_pipeline(verbose=args.verbose, started=started)
    print(summary.render(s))
    if summary.success:
        runstate.remember(s, summary.run_id)
    return 0 if summary.success else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    """The days first..last again: their files the ledger has not loaded, and their rows of the
    marts rebuilt (the same Dagster run a backfill of raw/* in the UI makes)."""
    from agentmon_pipeline.ingest.landing import first_day, today

    started = time.monotonic()
    first, last = args.start, args.end
    if last < first:
        raise UserError(f"--from {first} is after --to {last}")
    if last > today():
        raise UserError(f"--to {last} is after today ({today()}): there is no partition for it yet")
    if first < first_day():
        raise UserError(f"--from {first} is before the first daily partition, {first_day()} "
                        "(MONITORING_PARTITIONS_START moves it)")  # fmt: skip
    s = _ready_home()
    from agentmon_pipeline.app import runstate
    from agentmon_pipeline.app.runner import run_pipeline

    runstate.forget(s)
    print(
        f"agentmon backfill: {first} to {last} ({(last - first).days + 1} day(s)): their new files, their rows of the marts"
    )
    summary = run_pipeline(verbose=args.verbose, benchmarks=False, days=(first, last), started=started)
    print(summary.render(s, "agentmon backfill"))
    return 0 if summary.success else 1


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def cmd_status(args: argparse.Namespace) -> int:
    from agentmon_pipeline.app.runner import status_report

    print(status_report())
    return 0


def _number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def _share(value: str) -> float:
    """A probability strictly between 0 and 1 (a pass rate, alpha)."""
    number = _number(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1 (e.g. 0.05)")
    return number


def _positive_number(value: str) -> float:
    number = _number(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return number


def _non_negative(value: str) -> float:
    number = _number(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def _cases(value: str) -> int:
    number = _positive(value)
    if number < 2:
        raise argparse.ArgumentTypeError(f"{value} must be at least 2 (a paired test needs two cases)")
    return number


def _versions(value: str) -> list[str]:
    versions = [v.strip() for v in value.split(",") if v.strip()]
    if not versions:
        raise argparse.ArgumentTypeError("expected versions separated by commas, e.g. 1.0,1.1")
    return versions


def cmd_eval_list(args: argparse.Namespace) -> int:
    from agentmon_pipeline.evaluation.suite import list_suites, load_suite, suites_dir

    paths = list_suites()
    if not paths:
        examples = project_dir() / "evals" / "suites"
        print(f"no suites in {suites_dir()}: put yours there (or set AGENTMON_SUITES_DIR); "
              f"the examples run on demand, e.g. agentmon eval run {examples / 'support-qa.yaml'}")  # fmt: skip
        return 0
    rows = [("suite", "kind", "versions (baseline first)", "cases", "evaluators", "file")]
    for path in paths:
        suite = load_suite(path)
        rows.append((suite.name, "replay" if suite.is_replay else "agent", ", ".join(suite.versions),
                     str(len(suite.cases)), ", ".join(e.name for e in suite.evaluators), str(path)))  # fmt: skip
    _table(rows)
    return 0


def _print_comparisons(comparisons, fmt: str) -> None:
    from agentmon_pipeline.evaluation.compare import comparisons_table, to_csv, to_json

    if fmt == "json":
        print(to_json(comparisons))
    elif fmt == "csv":
        print(to_csv(comparisons), end="")
    else:
        print(comparisons_table(comparisons))


def cmd_eval_run(args: argparse.Namespace) -> int:
    from agentmon_pipeline.evaluation.compare import to_csv, to_json
    from agentmon_pipeline.evaluation.service import run_and_record

    report = run_and_record(args.suite, args.versions)
    run = report.run
    if args.format == "table":
        failed = sum(1 for c in run.calls if c.call.failed)
        print(f"suite {report.suite.name}: run {run.run_id}, {len(run.calls)} calls "
              f"({failed} failed), versions {', '.join(run.versions)}; baseline {run.versions[0]}")  # fmt: skip
        if len(run.versions) > 1:
            print()
            _print_comparisons(report.comparisons, "table")
            regressed = report.regressed
            print(f"\n{len(regressed)} metric(s) regressed" + (": " + ", ".join(
                f"{c.candidate} {c.metric}" for c in regressed) if regressed else ""))  # fmt: skip
            _inconclusive_note(report.comparisons, args.suite)
    elif args.format == "json":
        print(to_json(report.leaderboard))
    else:
        print(to_csv(report.leaderboard), end="")
    return 0


def cmd_eval_compare(args: argparse.Namespace) -> int:
    from agentmon_pipeline.evaluation.service import compare_stored, run_and_record

    if args.run:
        run_and_record(args.suite, [args.baseline, args.candidate])
    suite, run_id, comparisons = compare_stored(args.suite, args.baseline, args.candidate)
    if args.format == "table":
        print(f"suite {suite.name}, run {run_id}: {args.candidate} against {args.baseline}\n")
    _print_comparisons(comparisons, args.format)
    regressed = [c for c in comparisons if c.verdict == "regressed"]
    if args.format == "table":
        print(
            f"\n{len(regressed)} metric(s) regressed"
            + (": " + ", ".join(c.metric for c in regressed) if regressed else "")
        )
        _inconclusive_note(comparisons, args.suite)
    return 1 if regressed else 0


def _inconclusive_note(comparisons, suite_ref: str) -> None:
    """An inconclusive verdict says what the suite could have seen, and how to see more."""
    unsure = [c for c in comparisons if c.verdict == "inconclusive"]
    if unsure:
        print(f"{len(unsure)} inconclusive: a change smaller than `detectable (80%)` is found less than 4 times "
              f"in 5; for more power add cases or repeats (agentmon eval power {suite_ref})")  # fmt: skip


def _power_table(rows, repeats_column: bool) -> None:
    from agentmon_pipeline.evaluation.compare import size_text as size
    from agentmon_pipeline.numbers import plain

    table = [("candidate", "metric", "cases", *(("runs per case",) if repeats_column else ()), "detectable (80%)",
              "effect", "power at effect", "cases for 80% power")]  # fmt: skip
    for r in rows:
        cases = f"{r.cases} in {r.clusters} clusters" if r.clusters else str(r.cases)
        needed = "more than 1e9" if r.cases_needed is None else plain(float(r.cases_needed))
        table.append((r.candidate, r.metric, cases, *((plain(r.repeats),) if repeats_column else ()),
                      size(r.detectable, r.relative), size(r.effect, r.relative), f"{r.power:.2f}", needed))  # fmt: skip
    _table(table)


def cmd_eval_power(args: argparse.Namespace) -> int:
    """A suite's power from its latest stored run, or a pass rate's from --cases and --baseline-rate."""
    from agentmon_pipeline.evaluation import stats

    described = [name for name, value in (("--cases", args.cases), ("--baseline-rate", args.baseline_rate),
                 ("--difficulty-sd", args.difficulty_sd), ("--alpha", args.alpha), ("--metrics", args.metrics))
                 if value is not None]  # fmt: skip
    if args.suite is not None:
        if described:
            raise UserError(f"{described[0]} describes a suite without a stored run: give either a suite "
                            "(its latest run, its alpha and metrics) or --cases and --baseline-rate")  # fmt: skip
        return _suite_power(args)
    if args.metric is not None:
        raise UserError("--metric picks a metric of a suite: give the suite")
    if (args.cases is None) != (args.baseline_rate is None):
        given, missing = (
            ("--cases", "--baseline-rate") if args.baseline_rate is None else ("--baseline-rate", "--cases")
        )
        raise UserError(f"{given} needs {missing} too (e.g. --cases 400 --baseline-rate 0.5 --effect 0.1)")
    if args.cases is None:
        raise UserError("give a suite (agentmon eval power SUITE) or a pass rate to plan for: --cases N "
                        "--baseline-rate P (e.g. --cases 400 --baseline-rate 0.5 --effect 0.1)")  # fmt: skip
    rate, spread = args.baseline_rate, args.difficulty_sd or 0.0
    if spread >= (rate * (1 - rate)) ** 0.5:
        raise UserError(f"--difficulty-sd {spread:g}: per-case pass rates around {rate:g} spread by less than "
                        f"{(rate * (1 - rate)) ** 0.5:.3g} (that is every case at 0 or 1): give a smaller spread")  # fmt: skip
    if args.effect is not None and args.effect >= rate:
        raise UserError(f"--effect {args.effect:g}: a pass rate of {rate:g} cannot drop by that much; "
                        f"give a drop below {rate:g}")  # fmt: skip
    alpha, metrics = args.alpha or 0.05, args.metrics or 1
    level = alpha / metrics
    print(f"{args.cases} cases, pass rate {rate:g} in the baseline (per-case spread {spread:g}), two-sided alpha "
          f"{alpha:g}" + (f" with Holm over {metrics} metrics ({level:.3g} for one alone)" if metrics > 1 else "")
          + ", 80% power:")  # fmt: skip
    table = [("runs per case", "detectable drop (80%)", *((f"power at {args.effect:g}", f"cases for 80% at {args.effect:g}")
              if args.effect is not None else ()))]  # fmt: skip
    for repeats in sorted({1, 2, 3, 5, args.repeats or 1}):
        row = [str(repeats), f"{stats.pass_rate_mde(args.cases, rate, level, repeats, spread):.4f}"]
        if args.effect is not None:
            design = stats.pass_rate_design(rate, args.effect, repeats, spread)
            needed = design.cases_needed(args.effect, level)
            row += [
                f"{design.power(args.effect, args.cases, level):.2f}",
                "more than 1e9" if needed is None else str(needed),
            ]
        table.append(tuple(row))
    _table(table)
    print("\nMDE = (t_{1-alpha/2} + t_{0.8}) x SE of the mean per-case difference, with SE^2 = (p(1-p) + q(1-q) "
          "- 2 sd^2) / (runs x cases), p the baseline's rate and q = p - the drop")  # fmt: skip
    if not spread:
        print("a spread of 0 is the most noise a case can have (the safe side); with --difficulty-sd, cases "
              "that differ in difficulty (0.22 for difficulty ~ Beta(2, 2))")  # fmt: skip
    return 0


def _suite_power(args: argparse.Namespace) -> int:
    from agentmon_pipeline.evaluation.service import plan_power

    suite, run_id, rows = plan_power(args.suite, args.effect, args.repeats, args.metric)
    levels = sorted({r.level for r in rows})
    print(f"suite {suite.name}, run {run_id}: two-sided alpha {suite.regression.alpha:g}, Holm over the metrics of "
          f"each candidate ({', '.join(f'{x:.3g}' for x in levels)} for one metric alone), 80% power"
          + (f", {args.repeats} runs per case" if args.repeats else "") + "\n")  # fmt: skip
    _power_table(rows, repeats_column=True)
    if args.repeats:
        print("\n(latency, tokens and cost are not projected to other repeats)")
    return 0


def _require_warehouse() -> None:
    """A command that changes an existing warehouse (not `run`, which creates one) on a home
    without one says so, instead of creating an empty warehouse and succeeding on nothing."""
    from agentmon_pipeline.storage import connect

    with connect(settings(), read_only=True, timeout=5):
        pass


def cmd_alerts_evaluate(args: argparse.Namespace) -> int:
    from agentmon_pipeline.alerting.service import tick

    _require_warehouse()
    result = tick()
    print(result.line())
    for alert in result.firing:
        print(
            f"  {alert['alert_id']}  {alert['severity']:<8} {alert['state']:<12} {alert['rule']}: {alert['message']}"
        )
    return 0


def cmd_alerts_list(args: argparse.Namespace) -> int:
    import json

    from agentmon_pipeline.storage import connect, fetch_rows

    where, params = ("where state = ?", [args.state]) if args.state else ("", [])
    with connect(settings(), read_only=True) as con:
        rows = fetch_rows(
            con,
            "select alert_id, state, severity, rule, agent_id, metric, value, fire_count, first_seen_at, "
            f"last_seen_at, escalation_level, acknowledged_by, message from alerts.alerts {where} "
            "order by last_seen_at desc nulls last limit ?",
            [*params, args.limit],
        )
    if args.format == "json":
        print(json.dumps(rows, default=str, indent=2))
        return 0
    if not rows:
        print("no alerts" + (f" in state {args.state}" if args.state else ""))
        return 0
    table = [("alert", "state", "severity", "seen", "last seen (UTC)", "rule: what")]
    table += [(r["alert_id"], r["state"], r["severity"], f"{r['fire_count']}x", f"{r['last_seen_at']:%Y-%m-%d %H:%M}",
               f"{r['rule']}: {r['message']}") for r in rows]  # fmt: skip
    _table(table)
    print(
        "\n(seen: how many evaluations found the condition holding; agentmon alerts ack ALERT --by NAME stops an escalation)"
    )
    return 0


def cmd_alerts_ack(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from agentmon_pipeline.alerting.engine import acknowledge
    from agentmon_pipeline.storage import connect

    with connect(settings()) as con:
        acknowledge(con, args.alert_id, args.by, args.note, datetime.now(UTC))
    print(f"alert {args.alert_id} acknowledged by {args.by}: it will not escalate")
    return 0


def cmd_alerts_resolve(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from agentmon_pipeline.alerting.engine import resolve
    from agentmon_pipeline.alerting.outbox import deliver_pending
    from agentmon_pipeline.alerting.service import alert_config
    from agentmon_pipeline.storage import connect

    config, now = alert_config(), datetime.now(UTC)
    with connect(settings()) as con:
        queued = resolve(con, args.alert_id, args.by, now, config)
        sent = 0
        if queued:  # what is due goes out now; counted: this alert's resolution
            deliver_pending(con, config, now)
            sent = con.execute(
                "select count(*) from alerts.deliveries where alert_id = ? and event = 'resolved' and sent_at is not null",
                [args.alert_id],
            ).fetchone()[0]
    print(
        f"alert {args.alert_id} resolved"
        + (f"; {sent} of {queued} resolution notice(s) sent" if queued else "")
    )
    return 0


def _date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def cmd_prune(args: argparse.Namespace) -> int:
    from agentmon_pipeline.storage import connect
    from agentmon_pipeline.storage.retention import prune

    s = settings()
    days = args.days if args.days is not None else s.retention_days
    if days <= 0:
        print("retention is off (MONITORING_RETENTION_DAYS is not set, --days not given): nothing pruned")
        return 0
    _require_warehouse()
    with connect(s) as con:
        removed = prune(con, days)
    print(f"pruned detail older than {days} days: " + ", ".join(f"{t} {n}" for t, n in removed.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from agentmon_pipeline.outputs.exports import export_table

    path, rows = export_table(args.table, args.format, args.out, args.since)
    print(f"wrote {rows} rows of {args.table} to {path}")
    return 0


def _print_changes(changes, nothing: str) -> None:
    for change in changes:
        print(change.line())
    if not changes:
        print(nothing)


def _table(rows: list[tuple]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _fmt_time(value) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def cmd_registry_list(args: argparse.Namespace) -> int:
    import json

    from agentmon_pipeline.registry import AgentRegistry
    from agentmon_pipeline.storage import connect, fetch_rows, table_exists

    with connect(settings(), read_only=True) as con:
        agents = AgentRegistry(con).agents()
        unregistered = []
        if table_exists(con, "marts", "dim_agent_versions"):
            unregistered = fetch_rows(
                con,
                "select agent_id, agent_version, production_runs, last_seen_at from marts.dim_agent_versions "
                "where not is_registered and production_runs > 0 order by agent_id, agent_version",
            )
    if args.format == "json":
        print(json.dumps({"agents": agents, "unregistered_versions": unregistered}, default=str, indent=2))
        return 0
    if agents:
        rows = [("agent", "name", "owner", "active", "versions", "capabilities")]
        rows += [(a["agent_id"], a["name"] or "-", a["owner"] or "-", a["active_version"] or "-",
                  str(a["versions"]), ", ".join(a["capabilities"] or []) or "-") for a in agents]  # fmt: skip
        _table(rows)
    else:
        print("no agents registered (agentmon registry register AGENT VERSION, or agentmon registry sync)")
    if unregistered:
        print(f"\n{len(unregistered)} version(s) running in production but not registered:")
        for row in unregistered:
            print(
                f"  {row['agent_id']} {row['agent_version']}  ({row['production_runs']} runs, last {_fmt_time(row['last_seen_at'])})"
            )
    return 0


def cmd_registry_show(args: argparse.Namespace) -> int:
    import json

    from agentmon_pipeline.registry import AgentRegistry
    from agentmon_pipeline.storage import connect

    with connect(settings(), read_only=True) as con:
        registry = AgentRegistry(con)
        agent = registry.agent(args.agent_id)
        if agent is None:
            raise UserError(f"agent {args.agent_id!r} is not registered (see agentmon registry list)")
        versions, history = registry.versions(args.agent_id), registry.history(args.agent_id)
    if args.format == "json":
        print(json.dumps({"agent": agent, "versions": versions, "history": history}, default=str, indent=2))
        return 0
    print(f"{agent['agent_id']}: {agent['name'] or '-'}")
    for field in ("description", "owner"):
        print(f"  {field}: {agent[field] or '-'}")
    print(f"  capabilities: {', '.join(agent['capabilities'] or []) or '-'}")
    print()
    rows = [("version", "status", "deployed", "registered", "config")]
    rows += [(v["agent_version"], v["status"], _fmt_time(v["deployed_at"]), _fmt_time(v["registered_at"]),
              json.dumps(v["config"], sort_keys=True) if v["config"] else "-") for v in versions]  # fmt: skip
    _table(rows)
    print("\nhistory:")
    for h in history:
        what = " ".join(x for x in (h["action"], h["agent_version"] or "") if x)
        was = f" (was {h['previous_version']})" if h["previous_version"] else ""
        note = f": {h['detail']['note']}" if isinstance(h["detail"], dict) and h["detail"].get("note") else ""
        print(f"  {_fmt_time(h['effective_at'])}  {h['actor'] or '-':<10} {what}{was}{note}")
    return 0


def _config_arg(value: str | None):
    import json

    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--config {value}: cannot read the file ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--config: not valid JSON ({exc.msg} at character {exc.pos})") from None


def cmd_registry_register(args: argparse.Namespace) -> int:
    from agentmon_pipeline.registry import AgentRegistry
    from agentmon_pipeline.storage import connect

    config = _config_arg(args.config)
    with connect(settings()) as con:
        registry = AgentRegistry(con, actor=args.by)
        changes = registry.register_agent(
            args.agent_id, args.name, args.description, args.owner, args.capability
        )
        if args.version:
            changes += registry.register_version(args.agent_id, args.version, config, args.version_description,
                                                 activate=args.activate, at=args.at)  # fmt: skip
        elif args.activate or args.config:
            raise UserError("--activate and --config need a VERSION")
    _print_changes(changes, "nothing changed: already registered as given")
    return 0


def cmd_registry_activate(args: argparse.Namespace) -> int:
    from agentmon_pipeline.registry import AgentRegistry
    from agentmon_pipeline.storage import connect

    with connect(settings()) as con:
        changes = AgentRegistry(con, actor=args.by).activate(
            args.agent_id, args.version, at=args.at, note=args.note
        )
    _print_changes(changes, f"{args.agent_id} {args.version} is already the active version")
    return 0


def cmd_registry_rollback(args: argparse.Namespace) -> int:
    from agentmon_pipeline.registry import AgentRegistry
    from agentmon_pipeline.storage import connect

    with connect(settings()) as con:
        changes = AgentRegistry(con, actor=args.by).rollback(args.agent_id, at=args.at, note=args.note)
    _print_changes(changes, "nothing changed")
    return 0


def cmd_registry_sync(args: argparse.Namespace) -> int:
    from agentmon_pipeline.registry import AgentRegistry, sync_agents_file
    from agentmon_pipeline.storage import connect

    s = settings()
    path = args.file or s.agents_file
    if path is None:
        raise UserError(
            "no agents file: pass one, set AGENTMON_AGENTS_FILE, or put agents.yaml in $AGENTMON_HOME or the working directory"
        )
    with connect(s) as con:
        changes = sync_agents_file(AgentRegistry(con, actor=args.by), Path(path))
    _print_changes(changes, f"the registry already matches {path}")
    return 0


def cmd_reports_snapshot(args: argparse.Namespace) -> int:
    from agentmon_pipeline.outputs.reports import copy_snapshot, snapshot_path

    s = settings()
    dest = copy_snapshot(s, args.out)
    print(f"copied the reports snapshot {snapshot_path(s)} to {dest}")
    return 0


def cmd_db_init(args: argparse.Namespace) -> int:
    import os

    from agentmon_pipeline.storage.postgres import Roles, connect, init_roles, migrate, schema_version

    url = args.url or os.environ.get("MONITORING_DB_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise UserError(
            "db init is for a PostgreSQL warehouse (MONITORING_DB_URL=postgresql://...); a DuckDB warehouse "
            "migrates itself on first use and has no roles: give readers the file read-only"
        )
    ssl = os.environ.get("MONITORING_DB_SSL", "").strip().lower() in {"1", "true", "yes", "on"}
    with connect(url, ssl) as con:
        before = schema_version(con)
        after = migrate(con)
        print(
            f"schema version {after}" + (f" (migrated from {before})" if before != after else " (up to date)")
        )
        if not args.roles:
            return 0
        for line in init_roles(con, Roles(args.writer, args.reader)):
            print(line)
    print(f"grant them to login users: grant {args.reader} to <user>; grant {args.writer} to <pipeline user>; "
          f"alter role <pipeline user> set role {args.writer}")  # fmt: skip
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (with a pointer to --help), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _describe(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's own --help opens with the line its parent's --help lists it with."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None and helps.get(name):
                    child.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe(child)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentmon")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agentmon",
        description="Monitoring pipeline for AI agents: drop telemetry in the landing folder, get marts.",
    )
    parser.add_argument("--version", action="version", version=f"agentmon {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="command", parser_class=_Parser)
    demo = sub.add_parser("demo", help="write realistic demo telemetry into the landing folder")
    demo.add_argument("--days", type=_positive, default=30, help="days of history (default 30)")
    demo.add_argument(
        "--agents", type=_demo_agents, default=6, help="number of agents, at most 8 (default 6)"
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument(
        "--end", type=_end, default=None, help="last hour, ISO 8601 (default: the current hour)"
    )
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser(
        "run", help="ingest the landing folder and build every asset through Dagster, headless"
    )
    run.add_argument("--verbose", "-v", action="store_true", help="also print Dagster's and dbt's own logs")
    run.add_argument("--force", action="store_true",
                     help="run even when nothing is new since the last run (same files, suites, models, config, hour)")  # fmt: skip
    run.set_defaults(func=cmd_run)
    backfill = sub.add_parser(
        "backfill", help="load and rebuild past days (UTC) again: their new files, their rows of the marts"
    )
    backfill.add_argument("--from", dest="start", type=_day, required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument(
        "--to", dest="end", type=_day, required=True, help="last day, YYYY-MM-DD (included)"
    )
    backfill.add_argument(
        "--verbose", "-v", action="store_true", help="also print Dagster's and dbt's own logs"
    )
    backfill.set_defaults(func=cmd_backfill)
    status = sub.add_parser("status", help="what is in the warehouse: files, spans, quarantine, runs")
    status.set_defaults(func=cmd_status)

    evals = sub.add_parser("eval", help="benchmark agent versions: list, run and compare suites")
    eval_sub = evals.add_subparsers(
        dest="eval_command", metavar="command", required=True, parser_class=_Parser
    )
    eval_sub.add_parser(
        "list", help="the suites of this home ($AGENTMON_HOME/suites, or AGENTMON_SUITES_DIR)"
    ).set_defaults(func=cmd_eval_list)
    suite_help = "a suite name of this home's suites folder, or the path of a suite file"
    formats = ("table", "json", "csv")
    run_eval = eval_sub.add_parser("run", help="run a suite, store its results and verdicts")
    run_eval.add_argument("suite", help=suite_help)
    run_eval.add_argument(
        "--versions", type=_versions, default=None, help="comma-separated (default: the suite's)"
    )
    run_eval.add_argument("--format", choices=formats, default="table", help="json/csv print the leaderboard")
    run_eval.set_defaults(func=cmd_eval_run)
    compare = eval_sub.add_parser(
        "compare", help="candidate against baseline on the latest stored run; exit 1 if a metric regressed"
    )
    compare.add_argument("suite", help=suite_help)
    compare.add_argument("--baseline", required=True)
    compare.add_argument("--candidate", required=True)
    compare.add_argument("--format", choices=formats, default="table")
    compare.add_argument("--run", action="store_true", help="run the two versions first")
    compare.set_defaults(func=cmd_eval_compare)
    power = eval_sub.add_parser(
        "power", help="what a suite can detect at 80%% power, and the cases needed for an effect"
    )
    power.add_argument(
        "suite", nargs="?", help=suite_help + " (its latest stored run); or give --cases and --baseline-rate"
    )
    power.add_argument("--effect", type=_positive_number,
                       help="the change to plan for, in the metric's units (0.05: 5 points of a rate; 0.1: +10%% "
                            "latency); default: the suite's min_effect / min_relative_change")  # fmt: skip
    power.add_argument("--repeats", type=_positive, help="runs per case and version to plan for")
    power.add_argument("--metric", help="only this metric (or evaluator) of the suite")
    power.add_argument("--cases", type=_cases, help="without a suite: the number of cases")
    power.add_argument("--baseline-rate", type=_share, help="without a suite: the baseline's pass rate")
    power.add_argument(
        "--difficulty-sd",
        type=_non_negative,
        help="without a suite: spread of the per-case pass rates (default 0, the safe side)",
    )
    power.add_argument("--alpha", type=_share, help="without a suite: two-sided alpha (default 0.05)")
    power.add_argument(
        "--metrics", type=_positive, help="without a suite: metrics judged together (Holm; default 1)"
    )
    power.set_defaults(func=cmd_eval_power)

    prune = sub.add_parser("prune", help="delete raw and per-call detail older than the retention window")
    prune.add_argument(
        "--days", type=_positive, help="the window, 1 or more (default: MONITORING_RETENTION_DAYS)"
    )
    prune.set_defaults(func=cmd_prune)

    export = sub.add_parser(
        "export", help="a mart, benchmark, analytics or alerts table as CSV, JSON or Parquet"
    )
    export.add_argument("table", help="e.g. fct_agent_runs, agg_agent_daily, evals.results, alerts.alerts")
    export.add_argument("--format", choices=("csv", "json", "parquet"), default="csv", help="default csv")
    export.add_argument("--since", type=_date, help="only rows from this day on (YYYY-MM-DD, UTC)")
    export.add_argument("--out", type=Path, help="the file to write (default: ./TABLE.FORMAT)")
    export.set_defaults(func=cmd_export)

    alerts = sub.add_parser("alerts", help="alert rules: evaluate them, list, acknowledge and resolve alerts")
    alerts_sub = alerts.add_subparsers(
        dest="alerts_command", metavar="command", required=True, parser_class=_Parser
    )
    alerts_sub.add_parser("evaluate", help="evaluate the rules now and send what is due").set_defaults(
        func=cmd_alerts_evaluate
    )
    listing = alerts_sub.add_parser("list", help="the latest alerts")
    listing.add_argument(
        "--state", choices=("firing", "acknowledged", "resolved"), help="only alerts in this state"
    )
    listing.add_argument("--format", choices=("table", "json"), default="table", help="default table")
    listing.add_argument("--limit", type=_positive, default=50, help="the latest N (default 50)")
    listing.set_defaults(func=cmd_alerts_list)
    ack = alerts_sub.add_parser("ack", help="acknowledge an alert: it stops escalating")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who takes it")
    ack.add_argument("--note")
    ack.set_defaults(func=cmd_alerts_ack)
    res = alerts_sub.add_parser("resolve", help="resolve an alert by hand")
    res.add_argument("alert_id")
    res.add_argument("--by")
    res.set_defaults(func=cmd_alerts_resolve)

    snap = sub.add_parser(
        "reports-snapshot", help="copy the reports snapshot where the Evidence project reads it"
    )
    snap.add_argument("--out", type=Path, required=True, help="e.g. reports/sources/agentmon/agentmon.duckdb")
    snap.set_defaults(func=cmd_reports_snapshot)

    db = sub.add_parser("db", help="the warehouse: PostgreSQL schemas and roles")
    db_sub = db.add_subparsers(dest="db_command", metavar="command", required=True, parser_class=_Parser)
    db_init = db_sub.add_parser(
        "init",
        help="create or migrate the PostgreSQL schemas and tables; --roles: a writer and a read-only role",
    )
    db_init.add_argument(
        "--roles", action="store_true", help="create agentmon_writer and agentmon_reader (marts only)"
    )
    db_init.add_argument("--url", help="default: MONITORING_DB_URL (postgresql://...)")
    db_init.add_argument("--writer", default="agentmon_writer")
    db_init.add_argument("--reader", default="agentmon_reader")
    db_init.set_defaults(func=cmd_db_init)

    registry = sub.add_parser(
        "registry", help="agents and versions: list, show, register, activate, roll back, sync"
    )
    reg_sub = registry.add_subparsers(
        dest="registry_command", metavar="command", required=True, parser_class=_Parser
    )
    reg_list = reg_sub.add_parser(
        "list", help="registered agents, and versions seen in telemetry but not registered"
    )
    reg_list.add_argument("--format", choices=("table", "json"), default="table")
    reg_list.set_defaults(func=cmd_registry_list)
    reg_show = reg_sub.add_parser("show", help="an agent: its fields, versions and history")
    reg_show.add_argument("agent_id")
    reg_show.add_argument("--format", choices=("table", "json"), default="table")
    reg_show.set_defaults(func=cmd_registry_show)
    by = {"help": "who makes the change (default: AGENTMON_ACTOR, else your login)"}
    at = {"type": _end, "help": "when it took effect, ISO 8601 (default: now); records a past deployment"}
    reg = reg_sub.add_parser("register", help="register an agent, or a version of it (creating the agent)")
    reg.add_argument("agent_id")
    reg.add_argument("version", nargs="?")
    reg.add_argument("--name")
    reg.add_argument("--description", help="the agent's description")
    reg.add_argument("--owner")
    reg.add_argument("--capability", action="append", help="repeat for several")
    reg.add_argument("--config", help="the version's configuration: JSON, or @file.json")
    reg.add_argument("--version-description")
    reg.add_argument("--activate", action="store_true", help="make the version the active one")
    reg.add_argument("--at", **at)
    reg.add_argument("--by", **by)
    reg.set_defaults(func=cmd_registry_register)
    act = reg_sub.add_parser("activate", help="make a registered version the active one")
    act.add_argument("agent_id")
    act.add_argument("version")
    act.add_argument("--note")
    act.add_argument("--at", **at)
    act.add_argument("--by", **by)
    act.set_defaults(func=cmd_registry_activate)
    rb = reg_sub.add_parser("rollback", help="make the previously active version active again")
    rb.add_argument("agent_id")
    rb.add_argument("--note", help="why, kept in the audit log")
    rb.add_argument("--at", **at)
    rb.add_argument("--by", **by)
    rb.set_defaults(func=cmd_registry_rollback)
    sync = reg_sub.add_parser("sync", help="bring the registry in line with agents.yaml")
    sync.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="default: AGENTMON_AGENTS_FILE, else agents.yaml in $AGENTMON_HOME, else in the working directory",
    )
    sync.add_argument("--by", **by)
    sync.set_defaults(func=cmd_registry_sync)
    _describe(parser)
    return parser


class PipeSafe:
    """stdout that outlives its reader: `agentmon run | head -1` closes the pipe while the run goes
    on, and the next print raised BrokenPipeError inside the run (a traceback, exit 1, and the
    run's state never recorded). After the first broken write, output goes nowhere and the command
    finishes its work."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._closed()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    def _closed(self) -> None:
        # the interpreter flushes the real stdout at exit too: point its descriptor at devnull
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        self._stream = open(os.devnull, "w")  # noqa: SIM115 -- for the rest of the process

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    saved = sys.stdout
    sys.stdout = saved if isinstance(saved, PipeSafe) else PipeSafe(saved)
    try:
        return _main(argv)
    finally:
        sys.stdout = saved


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, settings_level(), logging.INFO), format="%(levelname)s %(message)s"
    )
    try:
        return args.func(args)
    except UserError as exc:
        print(f"agentmon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("agentmon: interrupted", file=sys.stderr)
        return 130


def settings_level() -> str:
    try:
        return settings().log_level
    except UserError:
        return "INFO"


if __name__ == "__main__":
    sys.exit(main())
