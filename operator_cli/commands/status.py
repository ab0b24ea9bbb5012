"""`vss-restore status [EXECUTION|SNAPSHOT]`: where a restore stands."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from operator_cli import executions, snapshots
from operator_cli.account import Account
from operator_cli.errors import NOT_VERIFIED, OK, UnknownExecution
from vss_restore import tags
from vss_restore.logic.verdict import RULES, is_weaker

RECENT = 10


EXAMPLES = """examples:
  vss-restore status                         the latest executions
  vss-restore status snap-0123456789abcdef0  a snapshot's verdict, volume by volume
  vss-restore status on-demand-snap-...      an execution's current step, or how it ended
  vss-restore status snap-... --json         the same as one JSON document (for scripts)"""


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "status",
        parents=[common],
        help="where a restore stands (a snapshot, an execution, or the latest executions)",
        description="A snapshot's verdict, an execution's current step, or the latest "
        "executions. Exit 0 when verified (or the execution succeeded), 1 otherwise: also 1 "
        "for a verified snapshot whose latest re-verification failed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "target",
        nargs="?",
        metavar="EXECUTION|SNAPSHOT",
        help="a snapshot ID, an execution ARN or an execution name; none: the latest executions",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text"
    )


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    if not args.target:
        found = _latest(account)
        show: Any = _show_latest
    elif args.target.startswith("snap-"):
        found = _snapshot(account, args.target)
        show = _show_snapshot
    else:
        found = _execution(account, executions.execution_arn(account, args.target))
        show = _show_execution
    if args.json:
        out.write(json.dumps(found, indent=2, default=str) + "\n")
    else:
        show(found, out)
    return OK if found["ok"] else NOT_VERIFIED


# -- what is known: plain data, the same for the text and for --json ---------------------


def _snapshot(account: Account, snapshot_id: str) -> dict[str, Any]:
    snapshot = snapshots.describe(account, snapshot_id)
    found = tags.as_dict(snapshot.get("Tags"))
    result: dict[str, Any] = {
        "snapshot_id": snapshot_id,
        "instance_id": found.get(tags.INSTANCE_ID, ""),
        "drive_letters": found.get(tags.DRIVE_LETTERS, ""),
        "started": f"{snapshot['StartTime']:%Y-%m-%d %H:%M:%S}",
        "vss": snapshots.is_vss(snapshot, account.settings),
        "ok": False,
    }
    if not result["vss"]:
        result["not_vss"] = snapshots.why_not_vss(snapshot, account.settings)
        return result
    status = found.get(tags.STATUS, "")
    if not status:
        return result | {"verdict": None}
    arn = found.get(tags.EXECUTION, "")
    rule = found.get(tags.RULE, "")
    # The latest re-verification, as its tags beside the verdict say (steps.record_reverified):
    # only ever written on a verified snapshot, after its verdict.
    reverification = (
        {
            "at": found.get(tags.REVERIFIED_AT, ""),
            "result": found[tags.REVERIFY_RESULT],
            "reason": found.get(tags.REVERIFY_REASON, ""),
            "execution": found.get(tags.REVERIFY_EXECUTION, ""),
        }
        if found.get(tags.REVERIFY_RESULT)
        else None
    )
    reverify_failed = (
        status == tags.VERIFIED
        and reverification is not None
        and reverification["result"] == tags.FAILED
    )
    result |= {
        "verdict": status,
        "checked_at": found.get(tags.CHECKED_AT, ""),
        "consistent_snapshot": found.get(tags.RESULT_SNAPSHOT, ""),
        "reason": found.get(tags.REASON, ""),
        "rule": rule,
        "rule_is_weaker": bool(rule) and is_weaker(rule),
        "rule_meaning": RULES.get(rule, ""),
        "volumes": _volumes(account, snapshot_id, arn),
        "volumes_summary": found.get(tags.VOLUMES, ""),
        "execution": _execution_if_kept(account, arn),
        "reverification": reverification,
        "reverification_failed": reverify_failed,
        "ok": status == tags.VERIFIED and not reverify_failed,
    }
    return result


def _execution_if_kept(account: Account, arn: str) -> dict[str, Any] | None:
    """The verdict's execution; only its ARN once Step Functions has dropped its history."""
    if not arn:
        return None
    try:
        return _execution(account, arn, with_request=False)
    except UnknownExecution:
        return {"arn": arn, "gone": True}


def _volumes(account: Account, snapshot_id: str, arn: str) -> list[dict[str, Any]]:
    """Each volume from the execution's verdict (its history is gone after 90 days: then
    only the tags' summary is left)."""
    if not arn:
        return []
    try:
        described = executions.describe(account, arn)
    except UnknownExecution:
        return []
    verdict = next(
        (v for v in executions.verdicts(described) if v.get("snapshot_id") == snapshot_id), {}
    )
    return [v for v in verdict.get("volumes") or [] if isinstance(v, dict)]


def _execution(account: Account, arn: str, *, with_request: bool = True) -> dict[str, Any]:
    described = executions.describe(account, arn)
    status = str(described["status"])
    started = described["startDate"]
    stopped = described.get("stopDate")
    result: dict[str, Any] = {
        "name": described.get("name", ""),
        "arn": arn,
        "status": status,
        "started": f"{started:%Y-%m-%d %H:%M:%S}",
        "seconds": (stopped - started).total_seconds() if stopped else None,
        "ok": status == executions.SUCCEEDED,
    }
    if not stopped:
        # No wall clock here: the simulator's clock is not the machine's.
        steps = list(executions.steps(executions.history(account, arn)))
        current = next((s for s in reversed(steps) if s.exited is None and s.kind != "Map"), None)
        if current is not None:
            result["current_step"] = current.name
            result["current_step_since_seconds"] = (current.entered - started).total_seconds()
    if with_request:
        result["request"] = executions.request(described)
        result["verdicts"] = executions.verdicts(described)
        if status not in (executions.SUCCEEDED, executions.RUNNING):
            result["error"] = executions.readable_error(described)
    return result


def _latest(account: Account) -> dict[str, Any]:
    listed = account.sfn.list_executions(
        stateMachineArn=account.state_machine_arn, maxResults=RECENT
    )["executions"]
    return {
        "state_machine": account.state_machine_arn,
        "executions": [
            {
                "name": e["name"],
                "status": e["status"],
                "started": f"{e['startDate']:%Y-%m-%d %H:%M:%S}",
                "seconds": (e["stopDate"] - e["startDate"]).total_seconds()
                if e.get("stopDate")
                else None,
            }
            for e in listed
        ],
        "ok": True,
    }


# -- the text an operator reads -------------------------------------------------------------


def _show_snapshot(found: dict[str, Any], out: TextIO) -> None:
    drives = found["drive_letters"]
    where = ", ".join(
        part
        for part in (
            found["instance_id"],
            f"drive {drives}:" if drives else "",
            f"started {found['started']} UTC",
        )
        if part
    )
    out.write(f"{found['snapshot_id']} ({where})\n")
    if not found["vss"]:
        out.write(found["not_vss"] + "\n")
        return
    if not found["verdict"]:
        out.write(
            "verdict:   none yet: no restore has recorded a verdict on it "
            f"(start one: vss-restore start {found['snapshot_id']})\n"
        )
        return
    out.write(f"verdict:   {found['verdict']} at {found['checked_at'] or '?'}\n")
    out.write(f"consistent snapshot: {found['consistent_snapshot']}\n")
    out.write(f"reason:    {found['reason']}\n")
    rule = found["rule"]
    if rule:
        if found["rule_is_weaker"]:
            out.write(f"rule:      {rule}  WEAKER: {found['rule_meaning']}\n")
        else:
            out.write(f"rule:      {rule} ({found['rule_meaning']})\n")
    _show_volumes(found["volumes"], found["volumes_summary"], out)
    if found["execution"]:
        _show_execution(found["execution"], out, heading="execution")
    again = found["reverification"]
    if again:
        out.write(f"re-verified: {again['result']} at {again['at'] or '?'}")
        out.write(f": {again['reason']}\n" if again["reason"] else "\n")
        out.write(f"  by: {again['execution']}\n")
    if found["reverification_failed"]:
        out.write(
            "NOT OK: verified the night it was taken, but its latest re-verification failed "
            "(exit 1): a restore today would likely fail the same way\n"
        )


def _show_volumes(volumes: list[dict[str, Any]], summary: str, out: TextIO) -> None:
    if not volumes:
        if summary:
            out.write(f"volumes:   {summary}\n")
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


def _show_execution(found: dict[str, Any], out: TextIO, heading: str = "") -> None:
    if found.get("gone"):
        out.write(f"{heading}: {found['arn']} (no longer kept by Step Functions)\n")
        return
    status = found["status"]
    if heading:
        out.write(f"{heading}: {found['arn']}\n")
    else:
        out.write(f"execution: {found['name']} ({found['arn']})\n")
    if found["seconds"] is not None:
        ran = executions.clock(found["seconds"])
        out.write(f"status:    {status} after {ran} (started {found['started']} UTC)\n")
    else:
        out.write(f"status:    {status} (started {found['started']} UTC)\n")
        if "current_step" in found:
            since = executions.clock(found["current_step_since_seconds"])
            out.write(f"now:       {found['current_step']} (since +{since})\n")
    if heading:
        return
    out.write(f"request:   {_request(found['request'])}\n")
    for verdict in found["verdicts"]:
        line = f"verdict:   {verdict.get('snapshot_id')} {verdict.get('status')}"
        if verdict.get("consistent_snapshot"):
            line += f" -> {verdict['consistent_snapshot']}"
        if verdict.get("status") == tags.VERIFIED and verdict.get("rule"):
            weaker = ", weaker" if is_weaker(str(verdict["rule"])) else ""
            line += f" (rule {verdict['rule']}{weaker})"
        if verdict.get("status") != tags.VERIFIED and verdict.get("reason"):
            line += f": {verdict['reason']}"
        out.write(line + "\n")
    if found.get("error") and not found["verdicts"]:
        out.write(f"error:     {found['error'][:500]}\n")


def _request(request: dict[str, Any]) -> str:
    """What started the execution, in a few words."""
    if "detail-type" in request:
        return f"event {request['detail-type']}"
    if "snapshot_id" in request:
        helper = request.get("helper_instance_id")
        return f"snapshot {request['snapshot_id']}" + (f", helper {helper}" if helper else "")
    return "schedule or other input"


def _show_latest(found: dict[str, Any], out: TextIO) -> None:
    listed = found["executions"]
    if not listed:
        out.write(f"no executions of {found['state_machine']} yet\n")
        return
    out.write(f"the latest {len(listed)} executions of {found['state_machine']}:\n")
    out.write(f"{'started (UTC)':<19}  {'status':<10} {'took':>8}  name\n")
    for execution in listed:
        seconds = execution["seconds"]
        ran = executions.clock(seconds) if seconds is not None else "…"
        out.write(
            f"{execution['started']}  {execution['status']:<10} {ran:>8}  {execution['name']}\n"
        )
