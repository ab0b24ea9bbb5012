"""`vss-restore doctor`: the pre-flight, per check OK or what to do."""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any, TextIO

from operator_cli import doctor, places
from operator_cli.account import Account
from operator_cli.errors import NOT_VERIFIED, OK

EXAMPLES = """examples:
  vss-restore doctor                      every check of the stack vss-restore
  vss-restore doctor --stack vss-prod     another stack
  vss-restore doctor --json               the checks as JSON (exit 1 if any fails)
  vss-restore doctor --on-instances       also ask each backed-up instance, through SSM Run
                                          Command, whether AWS.Tools.EC2 is installed
  vss-restore doctor --profiles prod,test --regions eu-west-1,us-east-1
                                          every account and Region (exit 1 if any fails)"""


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "doctor",
        parents=[common],
        help="check the stack, the helpers and the backed-up instances before a restore needs them",
        description="Reads the stack and the account (never changes them) and prints, per "
        "check, OK or what to do: the stack's outputs, the workflow and its rules, who gets "
        "the alerts, the helpers, and every backed-up instance (SSM Online, Windows, IMDSv2, "
        "its role's backup policy, its last verification); with HelperMode=fleet, the subnets, "
        "their way to SSM, the image, the type, the security group, the quota and the running "
        "helpers. --on-instances also runs one read-only command on the backed-up instances. "
        "Exit 0 when all pass, 1 otherwise.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--on-instances",
        action="store_true",
        help="also run a read-only PowerShell command (AWS-RunPowerShellScript) on each "
        "backed-up instance: is AWS.Tools.EC2 installed? Without it nothing is run on them",
    )
    places.add_options(parser)


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    if places.wanted(args):
        return _many(args, account, out)
    found = doctor.checks(account, on_instances=args.on_instances)
    passed = all(check.ok for check in found)
    if args.json:
        document = {"ok": passed, "checks": [check.as_dict() for check in found]}
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        _print(found, out)
    return OK if passed else NOT_VERIFIED


def _many(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    wanted = places.expand(account.where, args.profiles, args.regions)
    done, unread = places.read_each(
        wanted, functools.partial(doctor.checks, on_instances=args.on_instances)
    )
    passed = not unread and all(check.ok for _, found in done for check in found)
    if args.json:
        document = {
            "ok": passed,
            "places": [
                {
                    "account_id": a.account_id,
                    "region": a.region,
                    "profile": a.where.profile,
                    "ok": all(check.ok for check in found),
                    "checks": [check.as_dict() for check in found],
                }
                for a, found in done
            ],
            "not_read": [{"place": u.place, "reason": u.reason} for u in unread],
        }
        out.write(json.dumps(document, indent=2) + "\n")
        return OK if passed else NOT_VERIFIED
    for a, found in done:
        out.write(f"=== {places.label(a)} ===\n")
        _print(found, out)
    for u in unread:
        out.write(f"=== {u.place} ===\nFAIL  not read: {u.reason}\n")
    out.write("every place passed\n" if passed else "some place failed: see above\n")
    return OK if passed else NOT_VERIFIED


def _print(found: list[doctor.Check], out: TextIO) -> None:
    width = max(len(check.name) for check in found)
    for check in found:
        out.write(f"{_label(check)}  {check.name:<{width}}  {check.found}\n")
        if (not check.ok or check.warn) and check.fix:
            out.write(f"      {'':<{width}}  to do: {check.fix}\n")
    failed = sum(not check.ok for check in found)
    passed = not failed
    out.write("all checks passed\n" if passed else f"{failed} of {len(found)} checks failed\n")


def _label(check: doctor.Check) -> str:
    if not check.ok:
        return "FAIL"
    return "WARN" if check.warn else "OK  "
