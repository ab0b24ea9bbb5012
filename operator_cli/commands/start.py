"""`vss-restore start SNAPSHOT [--helper ID] [--follow]`: an on-demand restore."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from typing import Any, TextIO

from operator_cli import executions, snapshots
from operator_cli.account import Account
from operator_cli.durations import parse_duration
from operator_cli.errors import NOT_VERIFIED, OK, OperatorError
from operator_cli.follow import Follower
from vss_restore import tags
from vss_restore.settings import INSTANCE_ID_PATTERN

EXAMPLES = """examples:
  vss-restore start snap-0123456789abcdef0            start it, print the execution, return
  vss-restore start snap-0123456789abcdef0 --follow   each step live, then the verdict
  vss-restore start snap-... --follow --timeout 2h --json
                                                      wait quietly, print the result as JSON
  vss-restore start snap-... --reverify --follow      restore a verified snapshot again (after
                                                      fixing what its re-verification found)"""
REVERIFY_KIND = "on-demand-reverify"


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "start",
        parents=[common],
        help="start an on-demand restore of one snapshot",
        description="Start the restore workflow for one VSS snapshot.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("snapshot", metavar="SNAPSHOT", help="the snapshot to restore (snap-...)")
    parser.add_argument(
        "--helper", metavar="INSTANCE", help="the Windows helper (tagged vss-restore:helper=true)"
    )
    parser.add_argument(
        "--keep-volume",
        action="store_true",
        help="keep the restored volume (detached, in the helper's AZ) for a recovery",
    )
    parser.add_argument(
        "--reverify",
        action="store_true",
        help="restore a verified snapshot again, as the weekly re-verification does: no second "
        "consistent snapshot, the outcome in vss-restore:reverify-* beside the verdict, which "
        "stands (exit 1 unless it passes with --follow)",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="show each step until the verdict (exit 1 unless verified)",
    )
    parser.add_argument(
        "--timeout",
        default="48h",
        type=parse_duration,
        help="stop following after this long (e.g. 90m, 12h; default 48h); the restore goes on",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (with --follow: at the end, no live lines)",
    )


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    if args.helper and not INSTANCE_ID_PATTERN.match(args.helper):
        raise OperatorError(f"--helper {args.helper!r} is not an instance ID (i-...)")
    snapshot = snapshots.describe(account, args.snapshot)
    if not snapshots.is_vss(snapshot, account.settings):
        raise OperatorError(snapshots.why_not_vss(snapshot, account.settings))
    verdict = tags.as_dict(snapshot.get("Tags")).get(tags.STATUS, "")
    if args.reverify and verdict != tags.VERIFIED:
        # The workflow would skip it (logic/resolve.py, NOT_VERIFIED): say so before starting.
        raise OperatorError(
            f"{args.snapshot} is not verified ({verdict or 'no verdict yet'}): there is nothing "
            "to re-verify; restore it without --reverify"
        )
    request: dict[str, Any] = {"snapshot_id": args.snapshot}
    if args.helper:
        request["helper_instance_id"] = args.helper
    if args.keep_volume:
        request["keep_volume"] = True
    if args.reverify:
        request["reverify"] = True
    kind = REVERIFY_KIND if args.reverify else "on-demand"
    started = account.sfn.start_execution(
        stateMachineArn=account.state_machine_arn,
        name=executions.execution_name(args.snapshot, datetime.now(UTC), kind),
        input=json.dumps(request),
    )
    arn = started["executionArn"]
    what = "re-verification" if args.reverify else "restore"
    if not args.follow:
        if args.json:
            _json(out, {"snapshot_id": args.snapshot, "execution_arn": arn, "status": "RUNNING"})
        else:
            out.write(f"started the {what} of {args.snapshot}: {arn}\n")
            out.write(f"see where it stands: vss-restore status {arn}\n")
        return OK
    if not args.json:
        out.write(f"started the {what} of {args.snapshot}: {arn}\n")
    # With --json the steps are followed all the same, but not shown.
    shown = io.StringIO() if args.json else out
    follower = Follower(account, arn, shown, timeout_seconds=args.timeout.total_seconds())
    status = follower.run()
    result = _result(account, arn, args.snapshot, follower, status, reverify=args.reverify)
    if args.json:
        _json(out, result)
    else:
        _show(result, args.timeout.total_seconds(), out)
    return OK if result["verdict"]["status"] == tags.VERIFIED else NOT_VERIFIED


def _result(
    account: Account,
    arn: str,
    snapshot_id: str,
    follower: Follower,
    status: str,
    reverify: bool = False,
) -> dict[str, Any]:
    """How the restore ended (or that it still runs), its time per step, and its verdict."""
    result: dict[str, Any] = {
        "snapshot_id": snapshot_id,
        "execution_arn": arn,
        "status": status,
        "seconds": None,
        "verdict": {"status": ""},
    }
    if status == executions.RUNNING:
        return result
    described = executions.describe(account, arn)
    result["seconds"] = (described["stopDate"] - described["startDate"]).total_seconds()
    if described["status"] != executions.SUCCEEDED:
        result["error"] = executions.readable_error(described)
    result["time_per_step"] = [
        {"step": name, "times": times, "seconds": seconds}
        for name, times, seconds in follower.time_per_step()
    ]
    found = tags.as_dict(snapshots.describe(account, snapshot_id).get("Tags"))
    reported = next(
        (v for v in executions.verdicts(described) if v.get("snapshot_id") == snapshot_id), {}
    )
    verdict = found.get(tags.STATUS, "")
    if reverify:
        # Its outcome is beside the verdict (vss-restore:reverify-*), if this execution wrote it.
        if found.get(tags.REVERIFY_EXECUTION) == arn:
            result["verdict"] = {
                "status": found.get(tags.REVERIFY_RESULT, ""),
                "reason": found.get(tags.REVERIFY_REASON, ""),
                "reverify": True,
            }
        elif reported.get("status") == "skipped":
            result["verdict"] = {"status": "skipped", "reason": reported.get("reason", "")}
    elif verdict in (tags.VERIFIED, tags.FAILED):
        result["verdict"] = {
            "status": verdict,
            "consistent_snapshot": found.get(tags.RESULT_SNAPSHOT, ""),
            "reason": found.get(tags.REASON, ""),
        }
    elif reported.get("status") == "skipped":
        result["verdict"] = {"status": "skipped", "reason": reported.get("reason", "")}
    return result


def _show(result: dict[str, Any], timeout_seconds: float, out: TextIO) -> None:
    snapshot_id, arn = result["snapshot_id"], result["execution_arn"]
    if result["status"] == executions.RUNNING:
        out.write(
            f"still running after {executions.took(timeout_seconds)}; "
            f"the restore goes on: vss-restore status {arn}\n"
        )
        return
    out.write(f"\nexecution {result['status']} after {executions.clock(result['seconds'])}\n")
    if result.get("error"):
        out.write(f"  {result['error'][:300]}\n")
    out.write("time per step (longest first):\n")
    for row in result["time_per_step"][:8]:
        out.write(f"  {row['step']:<40} {executions.took(row['seconds']):>12}  {row['times']}x\n")
    verdict = result["verdict"]
    if verdict.get("reverify"):
        out.write(f"re-verification: {snapshot_id} {verdict['status']}\n  {verdict['reason']}\n")
    elif verdict["status"] == tags.VERIFIED:
        out.write(
            f"verdict: {snapshot_id} verified; consistent snapshot "
            f"{verdict['consistent_snapshot']}\n  {verdict['reason']}\n"
        )
    elif verdict["status"] == tags.FAILED:
        out.write(f"verdict: {snapshot_id} failed\n  {verdict['reason']}\n")
    elif verdict["status"] == "skipped":
        out.write(f"verdict: {snapshot_id} skipped: {verdict['reason']}\n")
    else:
        out.write(f"verdict: none recorded on {snapshot_id}\n")


def _json(out: TextIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document, indent=2, default=str) + "\n")
