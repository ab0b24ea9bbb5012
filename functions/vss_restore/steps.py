"""One function per workflow step, over the logic modules and the AWS adapters."""

import hashlib
from datetime import datetime
from typing import Any

from vss_restore import clock, tags, turns
from vss_restore.aws.ec2 import CONSISTENT_DESCRIPTION, Ec2, require_ours
from vss_restore.aws.kms import Kms
from vss_restore.aws.ledger import Ledger, consistent_key
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import (
    CheckFailed,
    CommandFailed,
    DeviceNameTaken,
    DiskNotFound,
    DiskToolReportCut,
    InvalidRequest,
    NoFreeDevice,
    RevertFailed,
    SnapshotNotFound,
    VolumeAlreadyAttached,
    VolumeFailed,
)
from vss_restore.logic import disk_tool
from vss_restore.logic import verdict as verdict_of_volumes
from vss_restore.logic.devices import free_device
from vss_restore.logic.helper import Helper, Source, helper_candidates, pick_helper, usable_helpers
from vss_restore.logic.polling import (
    Progress,
    next_progress,
    pause_in_invocation,
    progress_after_waiting,
)
from vss_restore.logic.resolve import OWN_OUTPUT_DELETED, SKIP, Decision, decide
from vss_restore.logic.verdict import NO_RULE, VolumeVerdict
from vss_restore.looks import SharedLook
from vss_restore.observability import (
    REVERT_DURATION,
    TEMPORARY_VOLUME_CREATED,
    TEMPORARY_VOLUME_DELETED,
    count,
    seconds,
)
from vss_restore.settings import Settings

COMMAND_RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
DELIVERY_SECONDS = 600  # SendCommand's TimeoutSeconds: how long a command may wait for the agent


def resolve(
    ec2: Ec2, ledger: Ledger, settings: Settings, snapshot_id: str, reverify: bool = False
) -> Decision:
    """Restore, verify or skip the snapshot. One that is gone is SnapshotNotFound, unless it
    was our consistent snapshot, deleted while pending by a failed restore's cleanup, whose
    completion event came once the deletion took effect: the ledger holds its record
    (`consistent#<snapshot>`, written by the snapshot step and again by that cleanup, kept
    2 days from then: Ledger.note_consistent_deleted)."""
    try:
        snapshot = ec2.snapshot(snapshot_id)
    except SnapshotNotFound:
        if ledger.waiting(consistent_key(snapshot_id)) is None:
            raise
        return Decision(SKIP, OWN_OUTPUT_DELETED, snapshot_id)
    return decide(snapshot, settings, started_at=clock.iso(clock.now()), reverify=reverify)


def prepare_helper(
    ec2: Ec2,
    ssm: Ssm,
    ledger: Ledger,
    settings: Settings,
    *,
    snapshot_id: str,
    requested: str,
    backed_up_instance: str,
    source_volume_id: str = "",
) -> Helper:
    """The helper for this snapshot, refused before anything is created unless it may
    (not the snapshot's own instance, not backed up) and can (running, Windows, SSM-online)
    revert it."""
    source = _source(ec2, backed_up_instance, source_volume_id)
    instance_ids = helper_candidates(requested, settings, source)
    instances = ec2.instances(instance_ids)
    helpers = usable_helpers(
        instance_ids, instances, ssm.instance_information(instance_ids), source, settings
    )
    loads: dict[str, int] = {}
    if len(helpers) > 1:  # the ledger is read only to choose among several
        loads = {
            h.instance_id: turns.load(
                ledger, h.instance_id, max_wait_seconds=settings.max_wait_hours * 3600
            )
            for h in helpers
        }
    chosen = pick_helper(helpers, loads, source.availability_zone, snapshot_id)
    # Out of device names: refuse now, before a volume exists (the attach picks the name).
    free_device(
        m["DeviceName"] for m in instances[chosen.instance_id].get("BlockDeviceMappings", [])
    )
    return chosen


def _source(ec2: Ec2, backed_up_instance: str, volume_id: str) -> Source:
    """The snapshot's own instance: the one its tag names, and the one its volume is
    attached to now (a clone of that volume collides with a disk online there too)."""
    volume = ec2.volume(volume_id) if volume_id else None
    attached = [a for a in (volume or {}).get("Attachments", []) if a.get("State") == "attached"]
    return Source(
        backed_up=backed_up_instance,
        attached_to=str(attached[0]["InstanceId"]) if attached else "",
        availability_zone=str((volume or {}).get("AvailabilityZone", "")),
    )


def client_token(execution: str, snapshot_id: str) -> str:
    """The same token on every retry of this execution's CreateVolume (at most 64 chars)."""
    return "vss-restore-" + hashlib.sha256(f"{execution}|{snapshot_id}".encode()).hexdigest()[:48]


def create_volume(
    ec2: Ec2,
    kms: Kms,
    settings: Settings,
    snapshot_id: str,
    helper: Helper,
    execution: str,
    kms_key_id: str = "",
) -> str:
    if kms_key_id:
        kms.require_usable(kms_key_id, snapshot_id)
    volume_id = ec2.create_volume(
        snapshot_id=snapshot_id,
        availability_zone=helper.availability_zone,
        volume_type=settings.volume_type,
        client_token=client_token(execution, snapshot_id),
        volume_tags={
            tags.RESOURCE: tags.TEMPORARY_VOLUME,
            tags.SOURCE_SNAPSHOT: snapshot_id,
            tags.EXECUTION: execution,
            "Name": f"vss-restore of {snapshot_id}",
        },
        kms_key_id=kms_key_id,
    )
    count(TEMPORARY_VOLUME_CREATED)
    return volume_id


def volume_progress(
    look: Ec2 | SharedLook,
    what: str,
    volume_id: str,
    instance_id: str,
    previous: dict[str, Any] | None,
) -> Progress:
    """One look of the state machine's loop: has the volume got there yet?"""
    return next_progress(
        what,
        previous,
        _volume_reached(look, what, volume_id, instance_id),
        clock.now(),
        key=volume_id,
    )


def wait_for_volume(
    look: Ec2 | SharedLook, what: str, volume_id: str, instance_id: str, seconds_left: float
) -> Progress:
    """Look when the operation usually has ended, then after growing pauses, until the
    volume gets there or this invocation's share of the wait is spent; the progress hands
    what is left of the wait to the state machine's loop. An invocation too short for the
    first pause still looks once."""
    started = clock.now()
    looks, ready = 0, False
    while not ready:
        waited = (clock.now() - started).total_seconds()
        pause = pause_in_invocation(what, looks, waited, seconds_left - waited, key=volume_id)
        if pause is None and looks:
            break
        if pause:
            clock.sleep(pause)
        ready = _volume_reached(look, what, volume_id, instance_id)
        looks += 1
    return progress_after_waiting(what, ready, looks, started, clock.now(), key=volume_id)


def _volume_reached(look: Ec2 | SharedLook, what: str, volume_id: str, instance_id: str) -> bool:
    """Whether the volume has reached what we wait for: available, attached or detached."""
    volume = look.volume(volume_id)
    if volume is None:
        raise VolumeFailed(f"{volume_id} no longer exists")
    state = volume.get("State")
    if state == "error":
        raise VolumeFailed(f"{volume_id} is in the error state")
    attachments = [a for a in volume.get("Attachments", []) if a.get("State") != "detached"]
    if what == "volume_attached":
        return any(
            a.get("InstanceId") == instance_id and a.get("State") == "attached" for a in attachments
        )
    return state == "available" and not attachments


# Names tried in one invocation before the attach is handed back to the state machine's
# Retry (DeviceNameTaken): each refusal is one AttachVolume from the mutating bucket.
NAMES_TRIED_PER_ATTACH = 3


def attach_volume(ec2: Ec2, volume_id: str, instance_id: str) -> str:
    """Attach at a name the helper does not use, read off its block device mappings
    (DescribeInstances), with no DescribeVolumes when all goes well: a name EC2 refuses as in
    use (an attach or a detach the mappings do not show yet) is skipped for the next one, and
    only a volume EC2 says is attached already is looked at (a retry after the attach went
    through, which the mappings may not show yet either: eventual consistency)."""
    instance = ec2.instance(instance_id) or {}
    mappings = instance.get("BlockDeviceMappings", [])
    for mapping in mappings:
        if mapping.get("Ebs", {}).get("VolumeId") == volume_id:
            return str(mapping["DeviceName"])  # a retry after the attach went through
    refused: list[str] = []
    while True:
        try:
            device = free_device((m["DeviceName"] for m in mappings), avoid=refused)
        except NoFreeDevice:
            if refused:  # the names left were taken by attaches the mappings do not show
                raise DeviceNameTaken(f"{', '.join(refused)} on {instance_id}") from None
            raise
        try:
            ec2.attach_volume(volume_id, instance_id, device)
            return device
        except DeviceNameTaken:
            refused.append(device)
            if len(refused) >= NAMES_TRIED_PER_ATTACH:
                raise  # transient: the state machine tries again later
        except VolumeAlreadyAttached:
            return _earlier_attach(ec2, volume_id, instance_id)


def _earlier_attach(ec2: Ec2, volume_id: str, instance_id: str) -> str:
    """The device of this volume's attach to this helper that EC2 already has; refused when
    EC2 has it attached elsewhere."""
    volume = ec2.volume(volume_id) or {}
    for attachment in volume.get("Attachments", []):
        if attachment.get("InstanceId") == instance_id and attachment.get("State") in {
            "attaching",
            "attached",
        }:
            return str(attachment["Device"])
    raise VolumeAlreadyAttached(f"{volume_id} is attached, but not to {instance_id}")


def run_disk_tool(
    ssm: Ssm,
    settings: Settings,
    instance_id: str,
    parameters: dict[str, list[str]],
    execution: str,
) -> str:
    return ssm.send_command(
        document=settings.disk_tool_document,
        instance_id=instance_id,
        parameters=parameters,
        timeout_seconds=DELIVERY_SECONDS,
        comment=disk_tool.comment(parameters["Action"][0], parameters["VolumeId"][0], execution),
    )


def disk_tool_progress(
    ssm: Ssm,
    what: str,
    action: str,
    command_id: str,
    instance_id: str,
    volume_id: str,
    previous: dict[str, Any] | None,
) -> tuple[Progress, dict[str, Any] | None]:
    """The command's progress and, once it has ended well, its validated report."""
    invocation = ssm.invocation(command_id, instance_id)
    status = (invocation or {}).get("Status", "Pending")
    if status in COMMAND_RUNNING:
        return next_progress(what, previous, False, clock.now()), None
    stdout = str((invocation or {}).get("StandardOutputContent", ""))
    if status != "Success":
        detail = (invocation or {}).get("StatusDetails", status)
        windows_error = _windows_error(stdout, action, volume_id)
        error = {disk_tool.REVERT: RevertFailed, disk_tool.CHECK: CheckFailed}.get(
            action, CommandFailed
        )
        raise error(f"{action} of {volume_id} ended {detail}: {windows_error}")
    report = disk_tool.parse_report(stdout, action, volume_id)
    if not report["ok"]:
        raise _failure(action, volume_id, report["error"])
    if action == disk_tool.CHECK and (findings := disk_tool.check_findings(report)):
        raise CheckFailed(f"Check of {volume_id}: {findings}")
    progress = next_progress(what, previous, True, clock.now())
    if action == disk_tool.REVERT:
        seconds(REVERT_DURATION, _since(progress.since))
    return progress, report


def _since(moment: str) -> float:
    return (clock.now() - datetime.fromisoformat(moment)).total_seconds()


def _windows_error(stdout: str, action: str, volume_id: str) -> str:
    try:
        return str(disk_tool.parse_report(stdout, action, volume_id).get("error"))
    except DiskToolReportCut:  # what is left of the report would mislead
        return disk_tool.REPORT_CUT
    except Exception:  # the command failed before it could report: say what we have
        return stdout.strip()[-500:] or "no output"


def _failure(action: str, volume_id: str, windows_error: str) -> Exception:
    """The named error for a disk tool that ran and reported it could not do its work."""
    error = {disk_tool.INSPECT: DiskNotFound, disk_tool.CHECK: CheckFailed}.get(
        action, RevertFailed
    )
    return error(f"{action} of {volume_id}: {windows_error}")


def detach_volume(
    ec2: Ec2,
    volume_id: str,
    instance_id: str,
    source_snapshot_id: str,
    look: Ec2 | SharedLook | None = None,
) -> None:
    """Detach our volume from the helper. The "ours?" check reads `look` (a shared look's
    answer, filtered by our tag, is used while fresh); IAM's aws:ResourceTag condition on
    DetachVolume stays the check at the call itself."""
    volume = (look or ec2).volume(volume_id)
    if volume is None:
        raise VolumeFailed(f"{volume_id} no longer exists")
    require_ours(volume, source_snapshot_id)
    if any(
        a.get("InstanceId") == instance_id and a.get("State") in {"attaching", "attached"}
        for a in volume.get("Attachments", [])
    ):
        ec2.detach_volume(volume_id, instance_id)


def snapshot_volume(
    ec2: Ec2,
    volume_id: str,
    source_snapshot_id: str,
    execution: str,
    shadow_copy_ids: list[str],
    lineage: dict[str, str] | None = None,
) -> str:
    """The consistent snapshot; made once per execution, even if this step is retried.

    It carries its source's lineage (instance, drive letters, device, shadow set, backup
    time: `Decision.lineage`), so that what can be recovered is found without the source."""
    made = ec2.snapshots_made_by(execution, source_snapshot_id)
    if made:
        return str(made[0]["SnapshotId"])
    known = {key: value for key, value in (lineage or {}).items() if key in tags.LINEAGE_KEYS}
    return ec2.create_snapshot(
        volume_id=volume_id,
        description=CONSISTENT_DESCRIPTION.format(source=source_snapshot_id),
        snapshot_tags={
            tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
            tags.SOURCE_SNAPSHOT: source_snapshot_id,
            tags.EXECUTION: execution,
            tags.SHADOW_COPY_ID: ",".join(shadow_copy_ids),
            **known,
            "Name": f"consistent {source_snapshot_id}",
        },
    )


def snapshot_progress(ec2: Ec2, snapshot_id: str, previous: dict[str, Any] | None) -> Progress:
    snapshot = ec2.snapshot(snapshot_id)
    if snapshot.get("State") == "error":
        raise VolumeFailed(f"the consistent snapshot {snapshot_id} failed")
    return next_progress(
        "snapshot_completed", previous, snapshot.get("State") == "completed", clock.now()
    )


def delete_volume(
    ec2: Ec2, volume_id: str, source_snapshot_id: str, look: Ec2 | SharedLook | None = None
) -> bool:
    """Delete our volume; False when it was gone already (a retry after the delete went
    through). The "ours?" check reads `look`, as the detach's; IAM's tag condition on
    DeleteVolume stays the check at the call itself."""
    volume = (look or ec2).volume(volume_id)
    if volume is None or volume.get("State") in {"deleting", "deleted"}:
        return False  # already gone: a retry after the delete went through
    require_ours(volume, source_snapshot_id)
    if not ec2.delete_volume(volume_id):
        return False
    count(TEMPORARY_VOLUME_DELETED)
    return True


def record_verified(
    ec2: Ec2,
    source_snapshot_id: str,
    consistent_snapshot_id: str,
    execution: str,
    *,
    rule: str,
    volumes: list[VolumeVerdict],
    checked: bool = True,
) -> dict[str, str]:
    """Tag the source snapshot verified, once no volume the backup shadowed is left
    unreverted (VolumeNotReverted otherwise): the tags carry the rule and a summary."""
    verdict_of_volumes.require_every_shadowed_volume_reverted(volumes)
    verdict = {
        tags.STATUS: tags.VERIFIED,
        tags.CHECKED_AT: clock.iso(clock.now()),
        tags.RESULT_SNAPSHOT: consistent_snapshot_id,
        tags.EXECUTION: execution,
        tags.REASON: verdict_of_volumes.reason(rule, volumes, checked),
        tags.RULE: rule,
        tags.VOLUMES: verdict_of_volumes.summary(volumes),
    }
    ec2.tag(source_snapshot_id, verdict)
    return verdict


def record_failed(
    ec2: Ec2,
    source_snapshot_id: str,
    reason: str,
    execution: str,
    *,
    rule: str = NO_RULE,
    volumes: str = "",
) -> dict[str, str]:
    """Tag the source snapshot failed; every verdict key is written, so nothing of an earlier
    verdict stays (rule and volumes: what was known when the restore failed)."""
    verdict = {
        tags.STATUS: tags.FAILED,
        tags.CHECKED_AT: clock.iso(clock.now()),
        tags.RESULT_SNAPSHOT: "none",
        tags.EXECUTION: execution,
        tags.REASON: reason,
        tags.RULE: rule,
        tags.VOLUMES: volumes,
    }
    ec2.tag(source_snapshot_id, verdict)
    return verdict


def record_reverified(
    ec2: Ec2, snapshot_id: str, result: str, reason: str, execution: str
) -> dict[str, str]:
    """Tag a re-verification's outcome beside the snapshot's verdict, which stays as the
    night's restore wrote it (tags.REVERIFY_KEYS)."""
    outcome = {
        tags.REVERIFIED_AT: clock.iso(clock.now()),
        tags.REVERIFY_RESULT: result,
        tags.REVERIFY_REASON: reason,
        tags.REVERIFY_EXECUTION: execution,
    }
    ec2.tag(snapshot_id, outcome)
    return outcome


def require_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{what} is missing")
    return value
