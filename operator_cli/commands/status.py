"""`vss-restore status [EXECUTION|SNAPSHOT]`: where a restore stands."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from operator_cli import executions, snapshots
from operator_cli.account import Account
from operator_cli.errors import NOT_VERIFIED, OK, UnknownExecution
from vss_restore import tags
from vss_restore.logic.verdict import RULES, is_weaker

RECENT = 10


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "status",
        parents=[common],
        help="where a restore stands (a snapshot, an execution, or the latest executions)",
        description="A snapshot's verdict, an execution's current step, or the latest "
        "executions. Exit 0 when verified (or the execution succeeded), 1 otherwise.",
    )
    parser.add_argument(
        "target",
        nargs="?",
        metavar="EXECUTION|SNAPSHOT",
        help="a snapshot ID, an execution ARN or an execution name; none: the latest executions",
    )


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    if not args.target:
        return _latest(account, out)
    if args.target.startswith("snap-"):
        return _snapshot(account, args.target, out)
    return _execution(account, executions.execution_arn(account, args.target), out)


def _snapshot(account: Account, snapshot_id: str, out: TextIO) -> int:
    snapshot = snapshots.describe(account, snapshot_id)
    found = tags.as_dict(snapshot.get("Tags"))
    drives = found.get(tags.DRIVE_LETTERS, "")
    where = ", ".join(
        part
        for part in (
            found.get(tags.INSTANCE_ID, ""),
            f"drive {drives}:" if drives else "",
            f"started {snapshot['StartTime']:%Y-%m-%d %H:%M:%S} UTC",
        )
        if part
    )
    out.write(f"{snapshot_id} ({where})\n")
    if not snapshots.is_vss(snapshot, account.settings):
        out.write(snapshots.why_not_vss(snapshot, account.settings) + "\n")
        return NOT_VERIFIED
    status = found.get(tags.STATUS, "")
    if not status:
        out.write(
            "verdict:   none yet: no restore has recorded a verdict on it "
            f"(start one: vss-restore start {snapshot_id})\n"
        )
        return NOT_VERIFIED
    out.write(f"verdict:   {status} at {found.get(tags.CHECKED_AT, '?')}\n")
    out.write(f"consistent snapshot: {found.get(tags.RESULT_SNAPSHOT, '')}\n")
    out.write(f"reason:    {found.get(tags.REASON, '')}\n")
    arn = found.get(tags.EXECUTION, "")
    _volumes(account, snapshot_id, arn, found, out)
    if arn:
        _execution(account, arn, out, heading="execution")
    return OK if status == tags.VERIFIED else NOT_VERIFIED


def _volumes(
    account: Account, snapshot_id: str, arn: str, found: dict[str, str], out: TextIO
) -> None:
    """The rule and each volume: from the execution's verdict, else the tags' summary (the
    execution's history is gone after 90 days)."""
    rule = found.get(tags.RULE, "")
    if rule:
        weaker = "  WEAKER: " if is_weaker(rule) else " ("
        meaning = RULES.get(rule, "")
        out.write(f"rule:      {rule}{weaker}{meaning}{'' if is_weaker(rule) else ')'}\n")
    verdict: dict[str, Any] = {}
    if arn:
        try:
            described = executions.describe(account, arn)
        except UnknownExecution:
            described = {}
        verdict = next(
            (v for v in executions.verdicts(described) if v.get("snapshot_id") == snapshot_id),
            {},
        )
    volumes = [v for v in verdict.get("volumes") or [] if isinstance(v, dict)]
    if not volumes:
        if found.get(tags.VOLUMES):
            out.write(f"volumes:   {found[tags.VOLUMES]}\n")
        return
    out.write("volumes:\n")
    rows = [
        [
            f"{v.get('drive')}:" if v.get("drive") else f"partition {v.get('partition')}",
            str(v.get("file_system") or "-"),
            str(v.get("what_was_done") or v.get("done") or "?"),
            f"{v['shadow_copy_id']} of {v.get('shadow_copy_date', '?')}"
            if v.get("shadow_copy_id")
            else "-",
            str(v.get("finding") or "-"),
        ]
        for v in volumes
    ]
    header = ["drive", "file system", "what was done", "shadow copy", "check"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def _execution(account: Account, arn: str, out: TextIO, heading: str = "") -> int:
    described = executions.describe(account, arn)
    status = str(described["status"])
    started = described["startDate"]
    stopped = described.get("stopDate")
    if heading:
        out.write(f"{heading}: {arn}\n")
    else:
        out.write(f"execution: {described.get('name', '')} ({arn})\n")
    if stopped:
        ran = executions.clock((stopped - started).total_seconds())
        out.write(f"status:    {status} after {ran} (started {started:%Y-%m-%d %H:%M:%S} UTC)\n")
    else:
        # No wall clock here: the simulator's clock is not the machine's.
        steps = list(executions.steps(executions.history(account, arn)))
        current = next((s for s in reversed(steps) if s.exited is None and s.kind != "Map"), None)
        out.write(f"status:    {status} (started {started:%Y-%m-%d %H:%M:%S} UTC)\n")
        if current is not None:
            since = executions.clock((current.entered - started).total_seconds())
            out.write(f"now:       {current.name} (since +{since})\n")
    if not heading:
        out.write(f"request:   {_request(executions.request(described))}\n")
        for verdict in executions.verdicts(described):
            line = f"verdict:   {verdict.get('snapshot_id')} {verdict.get('status')}"
            if verdict.get("consistent_snapshot"):
                line += f" -> {verdict['consistent_snapshot']}"
            if verdict.get("status") == tags.VERIFIED and verdict.get("rule"):
                weaker = ", weaker" if is_weaker(str(verdict["rule"])) else ""
                line += f" (rule {verdict['rule']}{weaker})"
            if verdict.get("status") != tags.VERIFIED and verdict.get("reason"):
                line += f": {verdict['reason']}"
            out.write(line + "\n")
        if status not in (executions.SUCCEEDED, executions.RUNNING):
            error = executions.readable_error(described)
            if error and not executions.verdicts(described):
                out.write(f"error:     {error[:500]}\n")
    return OK if status == executions.SUCCEEDED else NOT_VERIFIED


def _request(request: dict[str, Any]) -> str:
    """What started the execution, in a few words."""
    if "detail-type" in request:
        return f"event {request['detail-type']}"
    if "snapshot_id" in request:
        helper = request.get("helper_instance_id")
        return f"snapshot {request['snapshot_id']}" + (f", helper {helper}" if helper else "")
    return "schedule or other input"


def _latest(account: Account, out: TextIO) -> int:
    listed = account.sfn.list_executions(
        stateMachineArn=account.state_machine_arn, maxResults=RECENT
    )["executions"]
    if not listed:
        out.write(f"no executions of {account.state_machine_arn} yet\n")
        return OK
    out.write(f"the latest {len(listed)} executions of {account.state_machine_arn}:\n")
    out.write(f"{'started (UTC)':<19}  {'status':<10} {'took':>8}  name\n")
    for execution in listed:
        started = execution["startDate"]
        stopped = execution.get("stopDate")
        ran = executions.clock((stopped - started).total_seconds()) if stopped else "…"
        out.write(
            f"{started:%Y-%m-%d %H:%M:%S}  {execution['status']:<10} {ran:>8}  "
            f"{execution['name']}\n"
        )
    return OK
