"""The VSS snapshots of the account and their verdicts, as the source snapshots' tags say."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.account import Account
from operator_cli.errors import OperatorError, UnknownSnapshot
from vss_restore import tags
from vss_restore.errors import SnapshotUnusable
from vss_restore.logic.resolve import NOT_VSS, OWN_OUTPUT, decide
from vss_restore.logic.verdict import is_weaker
from vss_restore.settings import Settings

SNAPSHOT_ID = re.compile(r"^snap-[0-9a-f]{8,17}$")
PENDING = "pending"  # a VSS snapshot no restore has recorded a verdict on yet
_NOT_FOUND = {"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed", "InvalidParameterValue"}
# A backup runs around midnight: snapshots from noon to noon belong to the same night.
_NIGHT_STARTS = timedelta(hours=12)


@dataclass(frozen=True)
class VssSnapshot:
    """One row of the report."""

    snapshot_id: str
    instance_id: str  # "" when neither the backup's tag nor the volume says
    instance_name: str
    backup_set: str  # the backup's shadow set ID, else "night of <date>"
    night: str  # the night the snapshot was taken: <date> of its evening, UTC
    device: str
    drive_letters: str
    volume_id: str
    started: datetime
    status: str  # verified, failed or pending
    checked_at: str
    consistent_snapshot: str
    reason: str
    execution: str
    duration_seconds: float | None  # the execution's, when it has ended
    rule: str = ""  # which rule chose the shadow copies (vss-restore:rule)
    volumes: str = ""  # each volume in a few words (vss-restore:volumes)
    # The latest re-verification (the weekly sample, vss-restore:reverify-* beside the
    # verdict): when, verified or failed, why, and its execution; "" when none yet.
    reverified_at: str = ""
    reverify_result: str = ""
    reverify_reason: str = ""
    reverify_execution: str = ""

    @property
    def weaker_rule(self) -> bool:
        return is_weaker(self.rule)

    @property
    def reverify_failed(self) -> bool:
        """Verified the night it was taken, but its latest re-verification failed (a key
        disabled or a permission removed since): a restore today would likely fail too."""
        return self.status == tags.VERIFIED and self.reverify_result == tags.FAILED

    @property
    def day(self) -> str:
        return self.started.date().isoformat()

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["started"] = self.started.isoformat()
        return row


def is_vss(snapshot: dict[str, Any], settings: Settings) -> bool:
    """What the workflow restores or verifies (its resolver's own rules), whatever the verdict."""
    try:
        decision = decide(snapshot, settings)
    except SnapshotUnusable:  # a VSS snapshot in the error state
        return True
    return decision.reason not in (NOT_VSS, OWN_OUTPUT)


def describe(account: Account, snapshot_id: str) -> dict[str, Any]:
    """One snapshot, or a clear error when there is no such snapshot."""
    if not SNAPSHOT_ID.match(snapshot_id):
        raise OperatorError(f"{snapshot_id!r} is not a snapshot ID (snap-...)")
    try:
        found = account.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
            raise UnknownSnapshot(snapshot_id, account.region) from exc
        raise
    if not found:
        raise UnknownSnapshot(snapshot_id, account.region)
    return dict(found[0])


def why_not_vss(snapshot: dict[str, Any], settings: Settings) -> str:
    snapshot_id = snapshot["SnapshotId"]
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    if snapshot_tags.get(tags.RESOURCE):
        source = snapshot_tags.get(tags.SOURCE_SNAPSHOT, "another snapshot")
        return f"{snapshot_id} is a consistent snapshot vss-restore made of {source}"
    return (
        f"{snapshot_id} is not a VSS snapshot: it has neither the tag "
        f"{settings.vss_tag_key}={settings.vss_tag_value} nor AWS's "
        f"{tags.AWS_APP_CONSISTENT}=true and {tags.AWS_VSS_CONFIG}; the workflow would skip it"
    )


def since(account: Account, cutoff: datetime) -> list[VssSnapshot]:
    """Every VSS snapshot of the account started at or after `cutoff`, with its verdict."""
    settings = account.settings
    # Two filtered listings (the stack's marker, AWS's VSS tooling): never the whole account.
    return _rows(
        account,
        _listed(
            account,
            ((settings.vss_tag_key, settings.vss_tag_value), (tags.AWS_APP_CONSISTENT, "true")),
            cutoff,
        ),
    )


def reverify_failures(account: Account) -> list[VssSnapshot]:
    """Every verified VSS snapshot, whatever its age, whose latest re-verification failed.

    The weekly sample re-restores backups up to ReverifyWindowDays old, older than a
    report's --since: one listing filtered on the outcome's tag finds them wherever they are,
    without reading the account's other snapshots."""
    found = _listed(account, ((tags.REVERIFY_RESULT, tags.FAILED),), None)
    return [row for row in _rows(account, found) if row.reverify_failed]


def _listed(
    account: Account, markers: Iterable[tuple[str, str]], cutoff: datetime | None
) -> dict[str, dict[str, Any]]:
    """The account's own VSS snapshots carrying any of the tags, started since `cutoff`."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in markers:
        pages = account.ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
        )
        for page in pages:
            for snapshot in page["Snapshots"]:
                recent = cutoff is None or snapshot["StartTime"] >= cutoff
                if recent and is_vss(dict(snapshot), account.settings):
                    found[snapshot["SnapshotId"]] = dict(snapshot)
    return found


def _rows(account: Account, found: dict[str, dict[str, Any]]) -> list[VssSnapshot]:
    instances = _instances_of(account, found.values())
    names = _instance_names(account, set(instances.values()))
    durations = _durations(account, found.values())
    rows = [_row(s, instances, names, durations) for s in found.values()]
    return sorted(rows, key=lambda r: (r.instance_id, r.night, r.backup_set, r.started, r.device))


def _row(
    snapshot: dict[str, Any],
    instances: dict[str, str],
    names: dict[str, str],
    durations: dict[str, float | None],
) -> VssSnapshot:
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    started: datetime = snapshot["StartTime"]
    night = (started - _NIGHT_STARTS).date().isoformat()
    instance_id = instances.get(snapshot["SnapshotId"], "")
    execution = snapshot_tags.get(tags.EXECUTION, "")
    status = snapshot_tags.get(tags.STATUS, "")
    return VssSnapshot(
        snapshot_id=snapshot["SnapshotId"],
        instance_id=instance_id,
        instance_name=names.get(instance_id, ""),
        backup_set=snapshot_tags.get(tags.SHADOW_SET_ID) or f"night of {night}",
        night=night,
        device=snapshot_tags.get(tags.DEVICE) or snapshot_tags.get("Device", ""),
        drive_letters=snapshot_tags.get(tags.DRIVE_LETTERS, ""),
        volume_id=str(snapshot.get("VolumeId", "")),
        started=started,
        status=status if status in (tags.VERIFIED, tags.FAILED) else PENDING,
        checked_at=snapshot_tags.get(tags.CHECKED_AT, ""),
        consistent_snapshot=snapshot_tags.get(tags.RESULT_SNAPSHOT, ""),
        reason=snapshot_tags.get(tags.REASON, ""),
        execution=execution,
        duration_seconds=durations.get(execution) if execution else None,
        rule=snapshot_tags.get(tags.RULE, ""),
        volumes=snapshot_tags.get(tags.VOLUMES, ""),
        reverified_at=snapshot_tags.get(tags.REVERIFIED_AT, ""),
        reverify_result=snapshot_tags.get(tags.REVERIFY_RESULT, ""),
        reverify_reason=snapshot_tags.get(tags.REVERIFY_REASON, ""),
        reverify_execution=snapshot_tags.get(tags.REVERIFY_EXECUTION, ""),
    )


def _instances_of(account: Account, snapshots: Iterable[dict[str, Any]]) -> dict[str, str]:
    """snapshot -> instance: the backup's tag, else the instance its volume is attached to."""
    instances: dict[str, str] = {}
    untagged: dict[str, list[str]] = {}
    for snapshot in snapshots:
        instance_id = tags.as_dict(snapshot.get("Tags")).get(tags.INSTANCE_ID, "")
        if instance_id:
            instances[snapshot["SnapshotId"]] = instance_id
        elif snapshot.get("VolumeId"):
            untagged.setdefault(str(snapshot["VolumeId"]), []).append(snapshot["SnapshotId"])
    volume_ids = sorted(untagged)
    for start in range(0, len(volume_ids), 200):
        # A filter, not VolumeIds: a volume deleted since is simply not listed.
        volumes = account.ec2.describe_volumes(
            Filters=[{"Name": "volume-id", "Values": volume_ids[start : start + 200]}]
        )["Volumes"]
        for volume in volumes:
            for attachment in volume.get("Attachments", [])[:1]:
                for snapshot_id in untagged[volume["VolumeId"]]:
                    instances[snapshot_id] = attachment.get("InstanceId", "")
    return instances


def _instance_names(account: Account, instance_ids: set[str]) -> dict[str, str]:
    ids = sorted(i for i in instance_ids if i)
    names: dict[str, str] = {}
    for start in range(0, len(ids), 200):
        pages = account.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-id", "Values": ids[start : start + 200]}]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    name = tags.as_dict(instance.get("Tags")).get("Name", "")  # type: ignore[arg-type]
                    names[instance["InstanceId"]] = name
    return names


def _durations(account: Account, snapshots: Iterable[dict[str, Any]]) -> dict[str, float | None]:
    """execution ARN -> how long it ran (None while it runs or once AWS has forgotten it)."""
    arns = {tags.as_dict(s.get("Tags")).get(tags.EXECUTION, "") for s in snapshots} - {""}
    durations: dict[str, float | None] = {}
    for arn in sorted(arns):
        try:
            described = account.sfn.describe_execution(executionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {
                "ExecutionDoesNotExist",
                "InvalidArn",
            }:
                durations[arn] = None
                continue
            raise
        stopped = described.get("stopDate")
        durations[arn] = (stopped - described["startDate"]).total_seconds() if stopped else None
    return durations
