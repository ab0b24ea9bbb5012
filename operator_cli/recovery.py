"""Recovering drives from consistent snapshots: volumes, attachments, a new instance.

Every call that changes the account goes through `Calls`, which prints it first and, in a
dry run, makes none. Everything created is tagged vss-restore:resource=recovered-... with
who and when at birth; what this run created is deleted again if a later step fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError

from operator_cli.account import Account
from operator_cli.backups import Choice
from operator_cli.errors import OperatorError
from vss_restore import tags

RECOVERED_VOLUME = "recovered-volume"
RECOVERED_INSTANCE = "recovered-instance"
LAUNCH_ROOT = "recovered-instance-launch-root"  # the fresh root the recovered one replaces
RECOVERED_BY = f"{tags.PREFIX}recovered-by"
RECOVERED_AT = f"{tags.PREFIX}recovered-at"
RECOVERED_FROM = f"{tags.PREFIX}recovered-from"
# Devices for extra EBS volumes on Windows (FIELD-NOTES §3).
FREE_DEVICES = tuple(f"xvd{c}" for c in "fghijklmnopqrstuvwxyz")
POLL_SECONDS = 5.0
WAIT_SECONDS = 900.0
# EC2's codes for "this Availability Zone cannot take it now" (API Reference, Error codes).
NO_CAPACITY = {"InsufficientVolumeCapacity", "InsufficientInstanceCapacity"}


@dataclass
class Calls:
    """Makes (or, in a dry run, only prints) the EC2 calls that change the account."""

    ec2: Any
    out: TextIO
    dry_run: bool
    created: list[tuple[str, str]] = field(default_factory=list)  # (kind, ID), in order
    _placeholders: int = 0

    def make(self, operation: str, **params: Any) -> dict[str, Any]:
        shown = json.dumps(params, default=str, separators=(", ", ": "))
        self.out.write(f"  {'would call' if self.dry_run else 'calling'} {operation} {shown}\n")
        if self.dry_run:
            return {}
        method: Callable[..., dict[str, Any]] = getattr(self.ec2, _snake(operation))
        return method(**params)

    def placeholder(self, what: str) -> str:
        self._placeholders += 1
        return f"<{what} {self._placeholders}>"


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


@dataclass(frozen=True)
class Recovered:
    """One drive recovered to a volume."""

    drive: str
    volume_id: str
    device: str = ""


def tag_set(kind: str, who: str, when: datetime, extra: dict[str, str]) -> dict[str, str]:
    return {
        tags.RESOURCE: kind,
        RECOVERED_BY: who,
        RECOVERED_AT: when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }


def specification(resource_type: str, found: dict[str, str]) -> dict[str, Any]:
    return {"ResourceType": resource_type, "Tags": tags.as_list(found)}


@dataclass
class Recovery:
    """One run of `vss-restore recover` that changes the account."""

    account: Account
    calls: Calls
    who: str
    when: datetime
    instance_name: str
    volume_type: str = "gp3"
    initialization_rate: int | None = None

    def volume_tags(self, choice: Choice) -> dict[str, str]:
        backup = choice.backup
        name = f"{self.instance_name or 'recovered'} {backup.label or backup.device} as of "
        return tag_set(
            RECOVERED_VOLUME,
            self.who,
            self.when,
            {
                "Name": name + f"{backup.taken:%Y-%m-%d %H:%M} UTC",
                RECOVERED_FROM: backup.consistent_id,
                tags.SOURCE_SNAPSHOT: backup.snapshot_id,
                tags.DRIVE_LETTERS: backup.drive if backup.drive != backup.device else "",
                tags.BACKUP_TIME: backup.taken.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )

    def create_volume(self, choice: Choice, zone: str) -> str:
        if choice.kept_volume and choice.kept_zone == zone:
            # The workflow's volume, reverted and verified, already read in full: ours now.
            self.calls.make(
                "CreateTags",
                Resources=[choice.kept_volume],
                Tags=tags.as_list(self.volume_tags(choice)),
            )
            return choice.kept_volume
        params: dict[str, Any] = {
            "SnapshotId": choice.backup.consistent_id or self.calls.placeholder("snapshot"),
            "AvailabilityZone": zone,
            "VolumeType": self.volume_type,
            "TagSpecifications": [specification("volume", self.volume_tags(choice))],
        }
        if self.initialization_rate:
            params["VolumeInitializationRate"] = self.initialization_rate
        try:
            made = self.calls.make("CreateVolume", **params)
        except ClientError as exc:
            raise _refusal(exc, f"drive {choice.backup.label or choice.drive}", zone) from exc
        if self.calls.dry_run:
            return self.calls.placeholder("volume")
        volume_id = str(made["VolumeId"])
        self.calls.created.append(("volume", volume_id))
        self.wait(
            f"{volume_id} to be available",
            lambda: _volume_state(self.account, volume_id) == "available",
            failed=lambda: _volume_state(self.account, volume_id) == "error",
        )
        return volume_id

    def attach(self, volume_id: str, instance_id: str, device: str) -> None:
        self.calls.make("AttachVolume", VolumeId=volume_id, InstanceId=instance_id, Device=device)
        if self.calls.dry_run:
            return
        self.wait(
            f"{volume_id} to be attached to {instance_id}",
            lambda: _attachment_state(self.account, volume_id) == "attached",
        )

    def wait(
        self, what: str, done: Callable[[], bool], failed: Callable[[], bool] | None = None
    ) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not done():
            if failed is not None and failed():
                raise OperatorError(f"gave up waiting for {what}: it failed", exit_code=1)
            if time.monotonic() > deadline:
                raise OperatorError(
                    f"gave up waiting for {what} after {WAIT_SECONDS:.0f} s", exit_code=1
                )
            time.sleep(POLL_SECONDS)

    def undo(self) -> list[str]:
        """Delete what this run created, newest first; only what carries our tag."""
        undone = []
        for kind, resource_id in reversed(self.calls.created):
            if kind != "volume":
                continue
            found = self.account.ec2.describe_volumes(
                Filters=[{"Name": "volume-id", "Values": [resource_id]}]
            )["Volumes"]
            marked: list[dict[str, str]] = list(found[0].get("Tags", [])) if found else []  # type: ignore[arg-type]
            if not found or not tags.as_dict(marked).get(tags.RESOURCE):
                continue
            if found[0].get("Attachments"):
                continue  # attached: the operator decides
            self.account.ec2.delete_volume(VolumeId=resource_id)
            undone.append(resource_id)
        return undone


def _volume_state(account: Account, volume_id: str) -> str:
    found = account.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    return str(found[0]["State"]) if found else "gone"


def _attachment_state(account: Account, volume_id: str) -> str:
    found = account.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    attachments = found[0].get("Attachments", []) if found else []
    return str(attachments[0]["State"]) if attachments else "detached"


def _refusal(exc: ClientError, what: str, zone: str) -> OperatorError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in NO_CAPACITY:
        return OperatorError(
            f"{zone} has no capacity for {what} now ({code}: {error.get('Message', '')}): "
            "try again later, or recover into another Availability Zone "
            "(--volumes-only --availability-zone, or a target instance in another AZ)"
        )
    if "KMS" in code or "kms" in str(error.get("Message", "")):
        return OperatorError(f"{what}: the snapshot's KMS key refused ({code}: {error['Message']})")
    return OperatorError(
        f"CreateVolume for {what} failed in {zone}: {code}: {error.get('Message', '')}"
    )


def free_devices(instance: dict[str, Any], count: int) -> list[str]:
    """Devices the instance does not use, for `count` more volumes."""
    used = {
        str(m["DeviceName"]).removeprefix("/dev/") for m in instance.get("BlockDeviceMappings", [])
    }
    free = [d for d in FREE_DEVICES if d not in used]
    if len(free) < count:
        raise OperatorError(
            f"{instance['InstanceId']} has {len(free)} free device names (xvdf-xvdz), "
            f"{count} needed"
        )
    return free[:count]


def identity_of_volumes(account: Account, volume_ids: Iterable[str]) -> dict[str, set[str]]:
    """volume -> the volumes and snapshots it descends from (itself included).

    A clone carries its origin's disk signature/GUID (FIELD-NOTES §9): two disks whose
    lineages meet may collide. Windows may have rewritten one since; we cannot see that from
    EC2, so a meeting lineage counts as a collision (the safe guess).
    """
    lineage: dict[str, set[str]] = {}
    for volume_id in volume_ids:
        seen = {volume_id}
        current = volume_id
        for _ in range(20):  # a bounded walk: volume -> snapshot -> volume ...
            volumes = account.ec2.describe_volumes(
                Filters=[{"Name": "volume-id", "Values": [current]}]
            )["Volumes"]
            snapshot_id = str(volumes[0].get("SnapshotId") or "") if volumes else ""
            if not snapshot_id or snapshot_id in seen:
                break
            seen.add(snapshot_id)
            snapshot = _snapshot(account, snapshot_id)
            if snapshot is None:
                break
            source = tags.as_dict(snapshot.get("Tags")).get(tags.SOURCE_SNAPSHOT, "")
            if source:
                seen.add(source)
                snapshot = _snapshot(account, source) or snapshot
            current = str(snapshot.get("VolumeId") or "")
            if not current or current in seen:
                break
            seen.add(current)
        lineage[volume_id] = seen
    return lineage


def lineage_of_backup(account: Account, consistent_id: str, source_id: str) -> set[str]:
    """The consistent snapshot, its source, the backed-up volume and where that came from."""
    seen = {consistent_id, source_id}
    source = _snapshot(account, source_id)
    volume_id = str(source.get("VolumeId") or "") if source else ""
    if volume_id:
        for found in identity_of_volumes(account, [volume_id]).values():
            seen |= found
    return seen


def _snapshot(account: Account, snapshot_id: str) -> dict[str, Any] | None:
    found = account.ec2.describe_snapshots(
        Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}]
    )["Snapshots"]
    return dict(found[0]) if found else None
