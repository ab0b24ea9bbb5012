"""The daily reconciliation's decisions: which snapshots to restore, which volumes are orphans."""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from vss_restore import clock, tags
from vss_restore.aws.ledger import RUNNING
from vss_restore.logic.alert import Alert
from vss_restore.logic.resolve import SKIP, decide
from vss_restore.settings import Settings

# At most this many restores started, and orphan volumes deleted, per run: the rest waits
# for the next run (CreateVolume and DeleteVolume buckets refill at 5 per second).
MAX_ACTIONS_PER_RUN = 50
# Snapshots one aged-out alert names (an SNS message holds 256 KB; this is about 20 KB).
MAX_AGED_OUT_PER_ALERT = 500
NAME_PREFIX = "reconcile-"
REPORTED = "reported"
DELETED = "deleted"


def restore_candidates(
    snapshots: list[dict[str, Any]], settings: Settings, since: datetime
) -> list[dict[str, Any]]:
    """VSS snapshots started since `since` with no verdict, oldest first, each once."""
    unique = {str(s["SnapshotId"]): s for s in snapshots}
    candidates = [
        snapshot
        for snapshot in unique.values()
        if snapshot.get("State") == "completed"
        and snapshot["StartTime"] >= since
        and tags.STATUS not in tags.as_dict(snapshot.get("Tags"))
        # What the workflow itself would restore or verify: one definition of "VSS".
        and decide(snapshot, settings).action != SKIP
    ]
    return sorted(candidates, key=lambda s: (s["StartTime"], s["SnapshotId"]))


def claim_in_hand(claim: dict[str, str], now: datetime) -> bool:
    """A live claim (an execution is restoring it) or a verified one: nothing to start."""
    status = claim.get("status", "")
    if status == tags.VERIFIED:
        return True
    return status == RUNNING and int(claim.get("lease_until") or 0) >= now.timestamp()


def execution_name(snapshot_id: str, day: datetime) -> str:
    """One name per snapshot and day, so that a second run that day starts nothing new."""
    return f"{NAME_PREFIX}{snapshot_id}-{day:%Y%m%d}"


def is_execution_of(execution: str, state_machine_arn: str) -> bool:
    """Whether the execution ARN belongs to this state machine (and so to this stack)."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return bool(machine) and execution.startswith(f"{prefix}:execution:{machine}:")


@dataclass(frozen=True)
class Orphan:
    volume_id: str
    source_snapshot: str
    execution: str
    execution_status: str  # "" when Step Functions does not know the execution
    created: str
    attached_to: str
    action: str = REPORTED

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def orphan(volume: dict[str, Any], execution_status: str) -> Orphan:
    volume_tags = tags.as_dict(volume.get("Tags"))
    attached = [
        str(a.get("InstanceId"))
        for a in volume.get("Attachments", [])
        if a.get("State") in {"attaching", "attached", "busy", "detaching"}
    ]
    return Orphan(
        volume_id=str(volume["VolumeId"]),
        source_snapshot=volume_tags.get(tags.SOURCE_SNAPSHOT, ""),
        execution=volume_tags.get(tags.EXECUTION, ""),
        execution_status=execution_status,
        created=clock.iso(volume["CreateTime"]),
        attached_to=",".join(attached),
    )


def aged_out_alert(snapshot_ids: list[str], *, max_wait_hours: int) -> Alert:
    """The snapshots whose restore waited in line longer than MaxWaitHours, in one alert."""
    lines = [
        f"{len(snapshot_ids)} restore(s) of vss-restore waited in line for a helper's turn"
        f" longer than MaxWaitHours ({max_wait_hours} h) and failed with WaitedTooLong:"
        " their snapshots are not verified.",
        "",
        *[f"Snapshot:   {snapshot_id}" for snapshot_id in snapshot_ids],
        "",
        "More helpers (HelperInstanceIds), more turns each (HelperConcurrency) or a longer"
        " MaxWaitHours shorten the line; `vss-restore start SNAPSHOT` restores one again.",
    ]
    if len(snapshot_ids) == MAX_AGED_OUT_PER_ALERT:
        lines.append(f"At most {MAX_AGED_OUT_PER_ALERT} per alert: the next run names the rest.")
    return Alert(f"vss-restore: {len(snapshot_ids)} restore(s) waited too long", "\n".join(lines))


def orphans_alert(orphans: list[Orphan], *, hours: int, deleting: bool) -> Alert:
    lines = [
        f"{len(orphans)} temporary volume(s) of vss-restore are older than {hours} h and "
        "no running execution owns them.",
        "",
    ]
    for found in orphans:
        lines += [
            f"Volume:     {found.volume_id} ({found.action})",
            f"  created {found.created} from {found.source_snapshot or 'unknown'}"
            + (f", attached to {found.attached_to}" if found.attached_to else ""),
            f"  execution {found.execution} ({found.execution_status or 'not found'})",
        ]
    lines += [
        "",
        "DeleteOrphanVolumes is true: the reconciliation removes them."
        if deleting
        else "DeleteOrphanVolumes is false: delete them by hand, or set it to true.",
    ]
    return Alert(
        f"vss-restore: {len(orphans)} orphan temporary volume(s)",
        "\n".join(lines),
    )
