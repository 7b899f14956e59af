"""The `agentmon` command. User errors are one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from agentmon_pipeline.config import ensure_home, load_config_file, settings
from agentmon_pipeline.errors import UserError


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


def cmd_demo(args: argparse.Namespace) -> int:
    from agentmon_pipeline.demo import generate_demo

    s = ensure_home()
    summary = generate_demo(s.landing_dir, days=args.days, agents=args.agents, seed=args.seed, end=args.end)
    print(
        f"wrote {len(summary.files)} files to {s.landing_dir}: {summary.spans} spans in {summary.runs} agent runs, "
        f"{summary.metrics} metric points, {summary.events} events, {summary.bad_lines} deliberately bad lines "
        f"({summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC)"
    )
    print("next: agentmon run")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agentmon_pipeline.runner import run_pipeline

    s = ensure_home()
    load_config_file(s)
    summary = run_pipeline()
    print(summary.render(s))
    return 0 if summary.success else 1


def cmd_status(args: argparse.Namespace) -> int:
    from agentmon_pipeline.runner import status_report

    print(status_report())
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (with a pointer to --help), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agentmon",
        description="Monitoring pipeline for AI agents: drop telemetry in the landing folder, get marts.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    demo = sub.add_parser("demo", help="write realistic demo telemetry into the landing folder")
    demo.add_argument("--days", type=_positive, default=30, help="days of history (default 30)")
    demo.add_argument("--agents", type=_positive, default=6, help="number of agents, at most 8 (default 6)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument(
        "--end", type=_end, default=None, help="last hour, ISO 8601 (default: the current hour)"
    )
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser(
        "run", help="ingest the landing folder and build every asset through Dagster, headless"
    )
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="what is in the warehouse: files, spans, quarantine, runs")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
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
