"""`vss-restore simulate SCENARIO`: run a scenario in the local simulator (no AWS account)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from operator_cli.account import Account
from operator_cli.errors import OperatorError


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "simulate",
        help="run a scenario in the local simulator (as python -m simulator run)",
        description="Run the real workflow against a simulated account (moto and the "
        "simulator); the same output and exit status as `python -m simulator run`.",
        epilog="""examples:
  vss-restore simulate nightly-fleet                  the demo (make demo)
  vss-restore simulate on-demand --json report.json   and its report as JSON
  vss-restore simulate my-scenario.json --quiet       a scenario of yours, the table only""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", help="scenario file, or a name from simulator/scenarios/")
    parser.add_argument("--json", metavar="OUT", help="write the JSON report here ('-': stdout)")
    parser.add_argument("--handler-log", metavar="FILE", help="write the handlers' log lines here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the table")


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    try:
        from simulator.__main__ import main as simulator_main
    except ImportError as exc:  # moto and the simulator come with the development set-up
        raise OperatorError(
            f"the simulator is not installed here ({exc.name} is missing): run it from a "
            "clone of the repository after `make demo-setup` (or `make setup`)"
        ) from None
    argv = ["run", args.scenario]
    if args.json:
        argv += ["--json", args.json]
    if args.handler_log:
        argv += ["--handler-log", args.handler_log]
    if args.quiet:
        argv.append("--quiet")
    return simulator_main(argv)
