"""The `vss-restore` command: parse the arguments, run one command, say what went wrong.

Exit status: 0 ok (verified), 1 the restore failed or is not verified (yet), 2 usage or
environment (no credentials, no stack, unknown snapshot).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError

from operator_cli.account import (
    DEFAULT_STACK,
    Account,
    Where,
    check_stack_name,
    check_state_machine_arn,
    parse_vss_tag,
)
from operator_cli.commands import doctor, recover, report, simulate, start, status
from operator_cli.errors import UNUSABLE, OperatorError, explain

EXAMPLES = """examples:
  vss-restore simulate simulator/scenarios/nightly-fleet.json    the local demo, no account
  vss-restore start snap-0123456789abcdef0 --follow              restore one snapshot now
  vss-restore status snap-0123456789abcdef0                      its verdict, volume by volume
  vss-restore report --since 7d --format html -o report.html     every verdict of the week
  vss-restore doctor                                             is everything set up?
  vss-restore recover --instance i-0123456789abcdef0 --drive D:  D: back from its backups
  vss-restore COMMAND --help                                     a command's options"""

COMMANDS = {
    "start": start,
    "status": status,
    "report": report,
    "doctor": doctor,
    "recover": recover,
    "simulate": simulate,
}
# Options that say where to look, accepted before or after the command.
_WHERE_OPTIONS = ("stack", "profile", "region", "state_machine", "vss_tag")


def _where_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("where to look (default: boto3's own settings)")
    group.add_argument(
        "--stack", help=f"the CloudFormation stack (env VSS_RESTORE_STACK; default {DEFAULT_STACK})"
    )
    group.add_argument("--profile", help="AWS profile (default: AWS_PROFILE, else the default)")
    group.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's)")
    group.add_argument(
        "--state-machine",
        metavar="ARN",
        help="the workflow's ARN instead of the stack's output (env VSS_RESTORE_STATE_MACHINE)",
    )
    group.add_argument(
        "--vss-tag",
        metavar="KEY=VALUE",
        help="what marks a VSS snapshot, instead of the stack's VssTagKey/VssTagValue "
        "(env VSS_RESTORE_VSS_TAG)",
    )
    return common


def parser() -> argparse.ArgumentParser:
    common = _where_options()
    top = argparse.ArgumentParser(
        prog="vss-restore",
        parents=[common],
        description="Restore VSS snapshots on demand, follow restores, report the verdicts.",
        epilog=EXAMPLES + "\n\n" + (__doc__.split("\n\n", 1)[1].strip() if __doc__ else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add(commands, common)
    return top


def _version() -> str:
    try:
        return version("vss-restore")
    except PackageNotFoundError:  # run from a clone without `make setup`
        return "(not installed: run `make setup`)"


def where(args: argparse.Namespace, environ: Mapping[str, str]) -> Where:
    given = {name: getattr(args, name, None) for name in _WHERE_OPTIONS}
    stack = given["stack"] or environ.get("VSS_RESTORE_STACK") or DEFAULT_STACK
    machine = given["state_machine"] or environ.get("VSS_RESTORE_STATE_MACHINE", "")
    vss_tag = given["vss_tag"] or environ.get("VSS_RESTORE_VSS_TAG", "")
    return Where(
        stack=check_stack_name(stack),
        profile=given["profile"],
        region=given["region"],
        state_machine_arn=check_state_machine_arn(machine) if machine else "",
        vss_tag=parse_vss_tag(vss_tag) if vss_tag else None,
    )


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run one command; what it prints goes to `out` (stdout), problems to `err` (stderr)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has explained
        return exc.code if isinstance(exc.code, int) else UNUSABLE
    account: Account | None = None
    try:
        account = Account(where(args, os.environ))
        return int(COMMANDS[args.command].run(args, account, out))
    except OperatorError as exc:
        return _fail(err, str(exc), exc.exit_code)
    except (BotoCoreError, ClientError) as exc:
        problem = explain(exc, account.region_for_messages() if account else "AWS")
        return _fail(err, str(problem), problem.exit_code)
    except KeyboardInterrupt:
        return _fail(err, "interrupted (a restore already started goes on)", 130)
    finally:
        out.flush()


def _fail(err: TextIO, message: str, code: int) -> int:
    err.write(f"vss-restore: {message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
