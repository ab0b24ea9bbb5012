"""The one failure path: detach and delete what is ours, mark the snapshot failed."""

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from vss_restore import clock, tags
from vss_restore.aws.ec2 import Ec2, require_ours
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import CleanupPending, NotOurs, WaitedTooLong
from vss_restore.logic.alert import failure_alert
from vss_restore.logic.verdict import NO_RULE, VolumeVerdict, lines, summary
from vss_restore.lost import LOST_STATES
from vss_restore.observability import (
    CONSISTENT_SNAPSHOT_DELETED,
    RESTORE_FAILED,
    RESTORE_REVERIFY_FAILED,
    TEMPORARY_VOLUME_DELETED,
    count,
    logger,
)
from vss_restore.steps import record_failed, record_reverified
from vss_restore.turns import give_back_lost_turn, give_back_turn

MAX_REASON = 250  # a tag value holds 256


def reason_of(error: dict[str, Any] | None, limit: int = MAX_REASON) -> str:
    error = error or {}
    name = str(error.get("Error", "UnknownError"))
    cause = str(error.get("Cause", ""))
    # A Lambda error's Cause is the JSON {"errorType", "errorMessage", ...}.
    with contextlib.suppress(ValueError, AttributeError):
        cause = str(json.loads(cause).get("errorMessage", cause))
    return f"{name}: {cause}"[:limit]


@dataclass(frozen=True)
class DiskTool:
    """The helper's disk tool commands (our SSM document), as a forced detach must mind them."""

    ssm: Ssm
    document: str

    def stop(self, instance_id: str, volume_id: str) -> None:
        stop_disk_tool(self.ssm, self.document, instance_id, volume_id)


def stop_disk_tool(ssm: Ssm, document: str, instance_id: str, volume_id: str) -> None:
    """Before a forced detach: no disk tool command may still act on the volume's disk, or
    Windows could hand its disk number to the next disk attached while the script runs on.
    Inspect and Check are cancelled; a Revert cannot be (VSS: a revert cannot be undone or
    cancelled), so the detach waits for it. CleanupPending until none is left."""
    unfinished = ssm.unfinished_commands(instance_id, document, volume_id)
    for command in unfinished:
        if command.action != "Revert" and command.status != "Cancelling":
            ssm.cancel(command.command_id, instance_id)
    if unfinished:
        running = ", ".join(f"{c.action} {c.command_id} ({c.status})" for c in unfinished)
        raise CleanupPending(
            f"disk tool commands on {volume_id} still run on {instance_id}: {running}; "
            "detaching once they end"
        )


def remove_temporary_volume(
    ec2: Ec2, disk_tool: DiskTool, volume_id: str, source_snapshot_id: str
) -> None:
    """Detach (forced, once no disk tool command acts on it) and delete our volume;
    CleanupPending while a command or a detach is under way."""
    volume = ec2.volume(volume_id)
    if volume is None or volume.get("State") in {"deleting", "deleted"}:
        return
    try:
        require_ours(volume, source_snapshot_id)
    except NotOurs as refusal:
        logger.warning("left untouched", extra={"volume_id": volume_id, "why": str(refusal)})
        return
    attachments = [a for a in volume.get("Attachments", []) if a.get("State") != "detached"]
    for attachment in attachments:
        instance_id = str(attachment["InstanceId"])
        # EC2 refuses to detach a volume still attaching: that one waits for a later try.
        if attachment.get("State") not in {"attached", "busy"}:
            continue
        state = ec2.instance_state(instance_id)
        if state in {"stopping", "shutting-down", "terminated"}:
            # A helper lost: no disk tool runs there any more, and its commands cannot be
            # cancelled (the agent is gone). Stopping: detached once stopped. Shutting down:
            # EC2 itself detaches a volume attached after launch (DeleteOnTermination false,
            # as AttachVolume leaves it) when the instance terminates, and keeps it (EC2 User
            # Guide, "Preserve data when an instance is terminated"): deleted once available.
            logger.info("helper lost", extra={"instance_id": instance_id, "state": state})
        elif state == "stopped":
            # Windows is down: no command can act on the disk; a plain detach (EC2 User Guide,
            # "Detach an Amazon EBS volume": a volume can be detached from a stopped instance).
            ec2.detach_volume(volume_id, instance_id)
        else:
            disk_tool.stop(instance_id, volume_id)
            ec2.detach_volume(volume_id, instance_id, force=True)
    # AWS deletes a volume in the error state too.
    if attachments or volume.get("State") not in {"available", "error"}:
        raise CleanupPending(f"{volume_id} is {volume.get('State')}, waiting to delete it")
    ec2.delete_volume(volume_id)
    count(TEMPORARY_VOLUME_DELETED)


def give_back_helper(
    ec2: Ec2,
    ledger: Ledger,
    states: StepFunctions,
    helper_id: str,
    execution: str,
    snapshot_id: str,
    helper_concurrency: int,
) -> None:
    """Our turn (or place in line) on the helper, back: handed to the next in line, unless
    the helper is lost (stopped or terminated), when nobody may be handed a turn on it and
    its line is told to choose another helper (turns.give_back_lost_turn)."""
    state = ec2.instance_state(helper_id)
    if state in LOST_STATES:
        give_back_lost_turn(ledger, states, helper_id, execution, snapshot_id, f"is {state}")
    else:
        give_back_turn(ledger, states, helper_id, execution, snapshot_id, helper_concurrency)


def _volume_made_for(ec2: Ec2, execution: str, snapshot_id: str) -> str:
    """The volume this execution made for the snapshot, when the state never got its ID: the
    create failed after CreateVolume, while waiting for the volume."""
    made = [
        volume
        for volume in ec2.temporary_volumes(execution)
        if tags.as_dict(volume.get("Tags")).get(tags.SOURCE_SNAPSHOT) == snapshot_id
    ]
    return str(made[0]["VolumeId"]) if made else ""


def _deleted_note(deleting: list[str], pending: list[str]) -> str:
    """What the verdict's reason adds about the consistent snapshots deleted."""
    done = [s for s in deleting if s not in pending]
    return "".join(
        (
            f"; consistent snapshot {', '.join(done)} deleted" if done else "",
            f"; consistent snapshot {', '.join(pending)} deleted (takes effect when it completes)"
            if pending
            else "",
        )
    )


def clean_up(
    ec2: Ec2,
    sns: Sns,
    ledger: Ledger,
    *,
    snapshot_id: str,
    volume_id: str,
    instance_id: str,
    helper_id: str,
    restoring: bool,
    error: dict[str, Any] | None,
    execution: str,
    alert_topic_arn: str,
    states: StepFunctions,
    helper_concurrency: int,
    disk_tool: DiskTool,
    rule: str = NO_RULE,
    volumes: list[VolumeVerdict] | None = None,
    reverify: bool = False,
) -> dict[str, Any]:
    # A restore that failed after its consistent snapshot was started (the snapshot step or
    # its wait failed, the temporary volume could not be deleted, the verdict's last gate):
    # that snapshot is of a restore not verified, and goes; the verdict says so. A pending one
    # too: EBS accepts its deletion and carries it out once it completes ("Delete an Amazon
    # EBS snapshot"); its completion event then names a snapshot that is gone, which the
    # resolve step skips (steps.resolve) by the ledger's `consistent#<snapshot>` record,
    # written again here (the snapshot step may have failed before writing it).
    made = ec2.snapshots_made_by(execution, snapshot_id) if restoring else []
    deleting = [str(s["SnapshotId"]) for s in made]
    pending = [str(s["SnapshotId"]) for s in made if s.get("State") == "pending"]
    note = _deleted_note(deleting, pending)
    reason = reason_of(error, MAX_REASON - len(note)) + note
    volumes = volumes or []
    known = {"rule": rule, "volumes": [v.as_dict() for v in volumes]}
    # The verdict first: if the volume cannot be removed, the snapshot still says failed.
    # A failed re-verification leaves the night's verdict as it was and says so beside it;
    # the claim goes back to verified (the snapshot was, and its verdict says so).
    if restoring and reverify:
        record_reverified(ec2, snapshot_id, tags.FAILED, reason, execution)
        ledger.finish(snapshot_id, execution, tags.VERIFIED)
    elif restoring:
        record_failed(
            ec2,
            snapshot_id,
            reason,
            execution,
            rule=rule,
            volumes=summary(volumes, findings=False) if volumes else "",
        )
        ledger.finish(snapshot_id, execution, tags.FAILED, details=known)
    if restoring and not volume_id:
        volume_id = _volume_made_for(ec2, execution, snapshot_id)
    if volume_id:
        remove_temporary_volume(ec2, disk_tool, volume_id, snapshot_id)
    for consistent_id in deleting:
        if consistent_id in pending:
            # Before the deletion: its completion event comes once the deletion takes effect.
            ledger.note_consistent_deleted(consistent_id, execution, int(clock.now().timestamp()))
        # Ours, for this snapshot, by this execution (snapshots_made_by: tags, description).
        if ec2.delete_snapshot(consistent_id):
            count(CONSISTENT_SNAPSHOT_DELETED)
    if helper_id:
        give_back_helper(ec2, ledger, states, helper_id, execution, snapshot_id, helper_concurrency)
    count(RESTORE_REVERIFY_FAILED if reverify else RESTORE_FAILED)
    # Last, so that a cleanup retried while a detach finishes alerts once. A restore that
    # waited too long is named in the reconciliation's one alert instead: a long line ages
    # out by the hundred.
    if alert_topic_arn and (error or {}).get("Error") != WaitedTooLong.__name__:
        alert = failure_alert(
            snapshot_id=snapshot_id,
            instance_id=instance_id,
            volume_id=volume_id,
            reason=reason,
            execution_arn=execution,
            verdict=lines(rule, volumes) if volumes else [],
            reverify=reverify,
        )
        sns.publish(alert_topic_arn, alert.subject, alert.message)
    return {
        "snapshot_id": snapshot_id,
        "status": tags.FAILED,
        "reason": reason,
        "consistent_snapshot": "",
        "shadow_copies_reverted": [],
        **({"reverify": True} if reverify else {}),
        **({"consistent_snapshots_deleted": deleting} if deleting else {}),
        **({"consistent_snapshots_pending": pending} if pending else {}),
        **known,
    }
