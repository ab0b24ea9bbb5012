"""What can be recovered for an instance: its backups, drive by drive, and their verdicts.

A backup is a VSS snapshot the nightly backup tagged with its instance; it is recoverable once
a restore verified it and its consistent snapshot (tagged with the same instance, #15 item 1)
is completed. One filtered listing finds both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.account import Account
from operator_cli.errors import OperatorError
from operator_cli.snapshots import is_vss
from vss_restore import tags
from vss_restore.settings import INSTANCE_ID_PATTERN

_NOT_FOUND = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"}


@dataclass(frozen=True)
class Backup:
    """One drive's backup: the VSS snapshot, its verdict and its consistent snapshot."""

    snapshot_id: str
    drive: str  # the drive letters ("D", "C,E"), else the device
    device: str
    taken: datetime  # the source snapshot's StartTime, as vss-restore:backup-time says
    size_gib: int
    status: str  # verified, failed, or "" (no verdict yet)
    reason: str
    consistent: dict[str, Any] | None  # the consistent snapshot, when verified and completed

    @property
    def recoverable(self) -> bool:
        return self.status == tags.VERIFIED and self.consistent is not None

    @property
    def consistent_id(self) -> str:
        return str(self.consistent["SnapshotId"]) if self.consistent else ""

    @property
    def label(self) -> str:
        return ",".join(f"{letter}:" for letter in self.drive.split(",")) if self.drive else ""

    def holds(self, letter: str) -> bool:
        return letter in self.drive.split(",")

    def why_not(self) -> str:
        if self.status == tags.FAILED:
            return f"its restore failed: {self.reason}" if self.reason else "its restore failed"
        if self.status == tags.VERIFIED:
            return "its consistent snapshot is gone or not completed"
        return "no restore has verified it yet"


def check_instance_id(text: str, option: str) -> str:
    if not INSTANCE_ID_PATTERN.match(text):
        raise OperatorError(f"{option} {text!r} is not an instance ID (i-...)")
    return text


def describe_instance(account: Account, instance_id: str) -> dict[str, Any] | None:
    """The instance, or None when this Region does not know it (any more)."""
    try:
        reservations = account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return None
        raise
    found = [i for r in reservations for i in r["Instances"]]
    return dict(found[0]) if found else None


def of_instance(account: Account, instance_id: str) -> list[Backup]:
    """Every backup of the instance, newest first."""
    listed: list[dict[str, Any]] = []
    pages = account.ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": f"tag:{tags.INSTANCE_ID}", "Values": [instance_id]}]
    )
    for page in pages:
        listed.extend(dict(s) for s in page["Snapshots"])
    consistent = {
        tags.as_dict(s.get("Tags")).get(tags.SOURCE_SNAPSHOT, ""): s
        for s in listed
        if tags.as_dict(s.get("Tags")).get(tags.RESOURCE) == tags.CONSISTENT_SNAPSHOT
        and s.get("State") == "completed"
    }
    backups = [
        _backup(s, consistent) for s in listed if is_vss(s, account.settings) and not _ours(s)
    ]
    return sorted(backups, key=lambda b: (b.taken, b.drive), reverse=True)


def _ours(snapshot: dict[str, Any]) -> bool:
    return bool(tags.as_dict(snapshot.get("Tags")).get(tags.RESOURCE))


def _backup(snapshot: dict[str, Any], consistent: dict[str, dict[str, Any]]) -> Backup:
    found = tags.as_dict(snapshot.get("Tags"))
    status = found.get(tags.STATUS, "")
    result = consistent.get(snapshot["SnapshotId"])
    # The verdict names the consistent snapshot; the consistent snapshot names its source.
    if result is not None and result["SnapshotId"] != found.get(tags.RESULT_SNAPSHOT):
        result = None
    device = found.get(tags.DEVICE) or found.get("Device", "")
    return Backup(
        snapshot_id=snapshot["SnapshotId"],
        drive=found.get(tags.DRIVE_LETTERS, "") or device,
        device=device,
        taken=snapshot["StartTime"],
        size_gib=int(snapshot.get("VolumeSize", 0)),
        status=status,
        reason=found.get(tags.REASON, ""),
        consistent=result if status == tags.VERIFIED else None,
    )


@dataclass(frozen=True)
class Choice:
    """What one drive is recovered from."""

    drive: str
    backup: Backup  # the backup recovered (verified, or to verify first)
    verify_first: bool  # run the restore workflow for it before recovering
    newer_unverified: Backup | None  # a newer backup at or before the time, not recoverable
    kept_volume: str = ""  # the workflow's volume of a backup verified just now (--verify-first)
    kept_zone: str = ""


def choose(
    backups: Sequence[Backup], at: datetime, drives: Iterable[str], *, verify_first: bool
) -> list[Choice]:
    """For each drive, the newest verified backup at or before `at` (or, with verify_first,
    the newest backup at all, to verify now); a clear error for what cannot be recovered."""
    if not backups:
        raise OperatorError("no backups")  # the caller says whose
    first = min(b.taken for b in backups)
    if at < first:
        raise OperatorError(
            f"--at {at:%Y-%m-%d %H:%M:%S} UTC is before the first backup "
            f"({first:%Y-%m-%d %H:%M:%S} UTC): nothing to recover from that early"
        )
    known = sorted({b.drive for b in backups})
    wanted = list(drives) or known
    choices = []
    for drive in wanted:
        mine = [b for b in backups if b.drive == drive or b.holds(drive)]
        if not mine:
            shown = ", ".join(_label(d) for d in known)
            raise OperatorError(f"no backup of drive {_label(drive)} (backed up: {shown})")
        before = [b for b in mine if b.taken <= at]
        if not before:
            raise OperatorError(
                f"--at {at:%Y-%m-%d %H:%M:%S} UTC is before the first backup of drive "
                f"{_label(drive)} ({min(b.taken for b in mine):%Y-%m-%d %H:%M:%S} UTC)"
            )
        newest = before[0]
        verified = next((b for b in before if b.recoverable), None)
        if verify_first and not newest.recoverable:
            choices.append(Choice(drive, newest, True, None))
        elif verified is None:
            raise OperatorError(
                f"no verified consistent snapshot of drive {_label(drive)} at or before "
                f"{at:%Y-%m-%d %H:%M:%S} UTC: the newest backup, {newest.snapshot_id} of "
                f"{newest.taken:%Y-%m-%d %H:%M} UTC, has none ({newest.why_not()}). "
                "Run again with --verify-first to restore it through the workflow now "
                f"(or: vss-restore start {newest.snapshot_id} --keep-volume --follow)"
            )
        else:
            later = newest if newest is not verified else None
            choices.append(Choice(drive, verified, False, later))
    return choices


def _label(drive: str) -> str:
    return f"{drive}:" if len(drive) == 1 else drive
