"""The daily reconciliation's decisions: which snapshots to restore, which volumes are orphans."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
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


# -- what a lost boot test left (docs/boot-test.md) --------------------------------------------
# Step Functions' execution statuses the sweep reads (DescribeExecution `status`).
EXECUTION_RUNNING = "RUNNING"
TERMINATED = "terminated"
# The boot test's own bound past its launch (boot_test.SWAP_ALLOWANCE): a boot test older
# than 2 x HelperBootMinutes + this has ended, one way or another.
BOOT_TEST_ALLOWANCE = timedelta(minutes=30)


def boot_test_bound(helper_boot_minutes: int) -> timedelta:
    """How long a boot test may take at most (BootTestTimedOut past it)."""
    return 2 * timedelta(minutes=helper_boot_minutes) + BOOT_TEST_ALLOWANCE


@dataclass(frozen=True)
class BootTestLeftover:
    resource_id: str
    kind: str  # tags.BOOT_TEST_INSTANCE or tags.BOOT_TEST_ROOT (the volume's or instance's tag)
    source_snapshot: str
    execution: str
    execution_status: str  # "" when Step Functions does not know the execution
    created: str
    action: str = REPORTED

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def is_boot_test_resource(resource: Mapping[str, Any]) -> bool:
    """Tagged as the boot test's throwaway instance, its launch root or its swapped-in root:
    the only instances and volumes the sweep may terminate or delete."""
    return tags.as_dict(resource.get("Tags")).get(tags.RESOURCE) in {
        tags.BOOT_TEST_INSTANCE,
        tags.BOOT_TEST_ROOT,
    }


def boot_test_left(
    execution_status: str, created: datetime, now: datetime, *, helper_boot_minutes: int
) -> bool:
    """Whether a boot test's instance or volume was left by a lost execution: never while
    the execution runs; at once when it ended; when Step Functions cannot tell (it forgot
    the execution), only past the boot test's own bound from the resource's creation."""
    if execution_status == EXECUTION_RUNNING:
        return False
    if execution_status:
        return True
    return now - created > boot_test_bound(helper_boot_minutes)


def boot_test_leftover(resource: Mapping[str, Any], execution_status: str) -> BootTestLeftover:
    found = tags.as_dict(resource.get("Tags"))
    created = resource.get("LaunchTime") or resource.get("CreateTime")
    return BootTestLeftover(
        resource_id=str(resource.get("InstanceId") or resource.get("VolumeId")),
        kind=found.get(tags.RESOURCE, ""),
        source_snapshot=found.get(tags.SOURCE_SNAPSHOT, ""),
        execution=found.get(tags.EXECUTION, ""),
        execution_status=execution_status,
        created=clock.iso(created) if isinstance(created, datetime) else "",
    )


def boot_test_leftovers_alert(leftovers: list[BootTestLeftover], *, bound: timedelta) -> Alert:
    """The boot test's instances and volumes a lost execution left, and what became of them."""
    lines = [
        f"{len(leftovers)} instance(s) or volume(s) of a vss-restore boot test were left by an"
        " execution that no longer runs (ended, or unknown to Step Functions and older than"
        f" the boot test's bound, {int(bound.total_seconds() // 60)} min).",
        "",
    ]
    for found in leftovers:
        what = "Instance" if found.resource_id.startswith("i-") else "Volume"
        lines += [
            f"{what + ':':<11} {found.resource_id} ({found.action})",
            f"  {found.kind}, created {found.created or 'unknown'}"
            f" from {found.source_snapshot or 'unknown'}",
            f"  execution {found.execution or 'unknown'} ({found.execution_status or 'not found'})",
        ]
    lines += [
        "",
        "A boot test its execution lost recorded no result on its snapshot: the instance's"
        " next backup is boot-tested. Anything left for the next run is removed then.",
    ]
    return Alert(
        f"vss-restore: {len(leftovers)} boot-test leftover(s) of lost executions",
        "\n".join(lines),
    )
