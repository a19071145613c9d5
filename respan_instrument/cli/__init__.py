"""The `respan-instrument` command line: demo, collect, logs and run."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .._version import __version__

__all__ = ["build_parser", "main"]

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_DB = "./respan-logs.sqlite3"


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _port(text: str) -> int:
    value = _non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="respan-instrument",
        description="Record every openai SDK call and deliver it to Respan as a request log.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    commands.add_parser(
        "demo",
        help="offline demo: real openai SDK calls to a local stub, logs to a local collector",
        description="Make real openai SDK calls against a local OpenAI-compatible stub and show the "
        "request logs a local Respan-compatible collector received. No network, no keys.",
    )

    collect = commands.add_parser(
        "collect",
        help="run a local Respan-compatible collector and print each log it receives",
        description="Run a Respan-compatible request-log collector until Ctrl-C / SIGTERM.",
    )
    collect.add_argument("--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST})")
    collect.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"TCP port, 0 for any free one (default {DEFAULT_PORT})",
    )
    collect.add_argument(
        "--db", default=DEFAULT_DB, help=f"SQLite file for received logs (default {DEFAULT_DB})"
    )
    collect.add_argument("--api-key", default=None, help="when set, requests must carry this Respan API key")

    logs = commands.add_parser(
        "logs",
        help="print the logs stored by `collect`",
        description="Print request logs stored by `respan-instrument collect`, newest last.",
    )
    logs.add_argument(
        "--db", default=DEFAULT_DB, help=f"SQLite file written by collect (default {DEFAULT_DB})"
    )
    logs.add_argument("--customer", default=None, help="only this customer_identifier")
    logs.add_argument("--model", default=None, help="only models with this name (or name prefix)")
    logs.add_argument(
        "--limit", type=_non_negative, default=50, help="show the newest N logs, 0 for all (default 50)"
    )

    spool = commands.add_parser(
        "spool",
        help="show the on-disk spool of undelivered logs, or deliver it now",
        description="Logs wait in the spool while Respan is unreachable. `status` shows it, counted "
        "per destination and per API key (fingerprints, never keys); `flush` delivers now the logs "
        "made under RESPAN_API_KEY for RESPAN_BASE_URL (a log is only ever sent with its own key).",
    )
    spool.add_argument("action", choices=("status", "flush"))
    spool.add_argument(
        "--dir", default=None, help="spool directory (default RESPAN_SPOOL_DIR or the cache dir)"
    )
    spool.add_argument("--base-url", default=None, help="Respan API root (default RESPAN_BASE_URL)")
    spool.add_argument(
        "--api-key",
        default=None,
        help="Respan API key whose logs to show or deliver (default RESPAN_API_KEY)",
    )
    spool.add_argument("--timeout", type=float, default=60.0)

    run = commands.add_parser(
        "run",
        help="run a program with openai instrumented (no code changes)",
        description="Run a program with every openai SDK call instrumented, configured by RESPAN_* "
        "environment variables. `run app.py` runs `app.py` with this Python.",
        usage="%(prog)s [--] PROGRAM [ARGS ...]",
    )
    run.add_argument("program", nargs=argparse.REMAINDER, help="the program and its arguments")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `respan-instrument`; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo()
    if args.command == "collect":
        from ._collect import run_collect

        return run_collect(args.host, args.port, args.db, args.api_key)
    if args.command == "logs":
        from ._logs import run_logs

        return run_logs(args.db, args.customer, args.model, args.limit)
    if args.command == "spool":
        from ._spool import run_spool

        return run_spool(args.action, args.dir, args.base_url, args.api_key, args.timeout)
    from ._run import run_program

    return run_program(args.program)
