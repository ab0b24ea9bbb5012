"""`vss-restore start SNAPSHOT [--helper ID] [--follow]`: an on-demand restore."""

from __future__ import annotations

import argparse
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


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "start",
        parents=[common],
        help="start an on-demand restore of one snapshot",
        description="Start the restore workflow for one VSS snapshot.",
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


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    if args.helper and not INSTANCE_ID_PATTERN.match(args.helper):
        raise OperatorError(f"--helper {args.helper!r} is not an instance ID (i-...)")
    snapshot = snapshots.describe(account, args.snapshot)
    if not snapshots.is_vss(snapshot, account.settings):
        raise OperatorError(snapshots.why_not_vss(snapshot, account.settings))
    request: dict[str, Any] = {"snapshot_id": args.snapshot}
    if args.helper:
        request["helper_instance_id"] = args.helper
    if args.keep_volume:
        request["keep_volume"] = True
    started = account.sfn.start_execution(
        stateMachineArn=account.state_machine_arn,
        name=executions.execution_name(args.snapshot, datetime.now(UTC)),
        input=json.dumps(request),
    )
    arn = started["executionArn"]
    out.write(f"started the restore of {args.snapshot}: {arn}\n")
    if not args.follow:
        out.write(f"see where it stands: vss-restore status {arn}\n")
        return OK
    follower = Follower(account, arn, out, timeout_seconds=args.timeout.total_seconds())
    status = follower.run()
    if status == executions.RUNNING:
        out.write(
            f"still running after {executions.took(args.timeout.total_seconds())}; "
            f"the restore goes on: vss-restore status {arn}\n"
        )
        return NOT_VERIFIED
    return _verdict(account, arn, args.snapshot, follower, out)


def _verdict(account: Account, arn: str, snapshot_id: str, follower: Follower, out: TextIO) -> int:
    described = executions.describe(account, arn)
    ran = (described["stopDate"] - described["startDate"]).total_seconds()
    out.write(f"\nexecution {described['status']} after {executions.clock(ran)}\n")
    if described["status"] != executions.SUCCEEDED:
        error = executions.readable_error(described)
        if error:
            out.write(f"  {error[:300]}\n")
    out.write("time per step (longest first):\n")
    for name, times, seconds in follower.time_per_step()[:8]:
        out.write(f"  {name:<40} {executions.took(seconds):>12}  {times}x\n")
    verdict = tags.as_dict(snapshots.describe(account, snapshot_id).get("Tags"))
    status = verdict.get(tags.STATUS, "")
    reported = next(
        (v for v in executions.verdicts(described) if v.get("snapshot_id") == snapshot_id), {}
    )
    if status == tags.VERIFIED:
        out.write(
            f"verdict: {snapshot_id} verified; consistent snapshot "
            f"{verdict.get(tags.RESULT_SNAPSHOT, '')}\n  {verdict.get(tags.REASON, '')}\n"
        )
        return OK
    if status == tags.FAILED:
        out.write(f"verdict: {snapshot_id} failed\n  {verdict.get(tags.REASON, '')}\n")
    elif reported.get("status") == "skipped":
        out.write(f"verdict: {snapshot_id} skipped: {reported.get('reason', '')}\n")
    else:
        out.write(f"verdict: none recorded on {snapshot_id}\n")
    return NOT_VERIFIED
