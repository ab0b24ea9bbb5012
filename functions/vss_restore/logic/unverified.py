"""Which VSS-tagged instances have no backup verified in the last 26 hours, and the alert.

An instance is verified when every one of its attached volumes that the backup snapshots
(a VSS snapshot of it exists) has a snapshot whose restore was verified (the verdict's
checked-at time) in the last 26 hours: a nightly backup, its restore, and slack. A volume
never snapshotted (a disk the backup skips) is not judged; an instance none of whose
volumes was ever snapshotted is "never backed up".

Not counted, but named: an instance launched (or last started: EC2's LaunchTime) less than
26 hours ago, which no nightly backup has had to cover yet; and a stopped instance, which
the backup's maintenance window cannot reach. Its data does not change while it is stopped,
and counting it would keep the alarm on for as long as it stays stopped, until operators
learn to ignore it. Once started, it has 26 hours like a new one.
"""

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vss_restore import clock, tags
from vss_restore.errors import SnapshotUnusable
from vss_restore.logic.alert import Alert
from vss_restore.logic.resolve import NOT_VSS, OWN_OUTPUT, decide
from vss_restore.settings import Settings

EXPECTED_WITHIN = timedelta(hours=26)

# Why an instance counts, from the newest backup of its late volumes.
NEVER_BACKED_UP = "never backed up"
RESTORE_FAILED = "restore failed"
NO_RECENT_BACKUP = "no backup in the last 26 h"
NOT_VERIFIED_YET = "backup not verified yet"
# The worst reason first, when an instance's late volumes differ.
_WORST_FIRST = (RESTORE_FAILED, NO_RECENT_BACKUP, NOT_VERIFIED_YET)


@dataclass(frozen=True)
class LateVolume:
    volume_id: str
    last_verified: str  # the newest verified verdict's checked-at, "" if none
    newest_snapshot: str
    newest_started: str
    newest_status: str  # verified, failed or pending
    newest_reason: str


@dataclass(frozen=True)
class Unverified:
    instance_id: str
    why: str
    last_verified: str  # the oldest of its late volumes' last verifications, "" if never
    volumes: list[LateVolume] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Findings:
    unverified: list[Unverified]
    verified: list[str]
    launched_recently: list[str]
    stopped: list[str]
    names: dict[str, str]  # instance -> its Name tag

    @property
    def instance_ids(self) -> list[str]:
        return sorted(u.instance_id for u in self.unverified)


def is_vss(snapshot: dict[str, Any], settings: Settings) -> bool:
    """What the workflow restores or verifies (its resolver's own rules), whatever the verdict."""
    try:
        return decide(snapshot, settings).reason not in (NOT_VSS, OWN_OUTPUT)
    except SnapshotUnusable:
        return True


def judge(
    instances: list[dict[str, Any]],
    snapshots: list[dict[str, Any]],
    settings: Settings,
    now: datetime,
) -> Findings:
    cutoff = now - EXPECTED_WITHIN
    by_volume: dict[str, list[dict[str, Any]]] = defaultdict(list)
    unique = {str(s["SnapshotId"]): s for s in snapshots if is_vss(s, settings)}
    for snapshot in unique.values():
        by_volume[str(snapshot.get("VolumeId", ""))].append(snapshot)
    findings = Findings([], [], [], [], {})
    for instance in sorted(instances, key=lambda i: str(i["InstanceId"])):
        instance_id = str(instance["InstanceId"])
        findings.names[instance_id] = tags.as_dict(instance.get("Tags")).get("Name", "")
        if instance.get("State", {}).get("Name") in {"stopping", "stopped"}:
            findings.stopped.append(instance_id)
        elif instance["LaunchTime"] > cutoff:
            findings.launched_recently.append(instance_id)
        else:
            found = _judge_instance(instance, by_volume, cutoff)
            if found is None:
                findings.verified.append(instance_id)
            else:
                findings.unverified.append(found)
    return findings


def _judge_instance(
    instance: dict[str, Any], by_volume: dict[str, list[dict[str, Any]]], cutoff: datetime
) -> Unverified | None:
    instance_id = str(instance["InstanceId"])
    volumes = [
        str(mapping["Ebs"]["VolumeId"])
        for mapping in instance.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("VolumeId")
    ]
    backed_up = [v for v in volumes if by_volume.get(v)]
    if not backed_up:
        return Unverified(instance_id, NEVER_BACKED_UP, "")
    late = [
        volume
        for volume in (_volume(v, by_volume[v]) for v in backed_up)
        if _verified_at(volume.last_verified) <= cutoff
    ]
    if not late:
        return None
    whys = {_why(volume, cutoff) for volume in late}
    why = next(reason for reason in _WORST_FIRST if reason in whys)
    oldest = min((v.last_verified for v in late), key=_verified_at)
    return Unverified(instance_id, why, oldest, late)


def _volume(volume_id: str, snapshots: list[dict[str, Any]]) -> LateVolume:
    verified = [
        checked_at
        for s in snapshots
        if tags.as_dict(s.get("Tags")).get(tags.STATUS) == tags.VERIFIED
        and _verified_at(checked_at := tags.as_dict(s.get("Tags")).get(tags.CHECKED_AT, ""))
        > _NEVER
    ]
    newest = max(snapshots, key=lambda s: (s["StartTime"], s["SnapshotId"]))
    newest_tags = tags.as_dict(newest.get("Tags"))
    status = newest_tags.get(tags.STATUS, "")
    return LateVolume(
        volume_id=volume_id,
        last_verified=max(verified, key=_verified_at, default=""),
        newest_snapshot=str(newest["SnapshotId"]),
        newest_started=clock.iso(newest["StartTime"]),
        newest_status=status if status in (tags.VERIFIED, tags.FAILED) else "pending",
        newest_reason=newest_tags.get(tags.REASON, ""),
    )


def _why(volume: LateVolume, cutoff: datetime) -> str:
    if volume.newest_status == tags.FAILED:
        return RESTORE_FAILED
    if _verified_at(volume.newest_started) <= cutoff or volume.newest_status == tags.VERIFIED:
        return NO_RECENT_BACKUP
    return NOT_VERIFIED_YET


_NEVER = datetime.min.replace(tzinfo=UTC)


def _verified_at(text: str) -> datetime:
    """A checked-at tag as a time; a missing or malformed one counts as never."""
    try:
        return datetime.fromisoformat(text) if text else _NEVER
    except ValueError:
        return _NEVER


def unverified_alert(findings: Findings, previous: list[str]) -> Alert:
    """The message sent when the set of unverified instances changes."""
    count = len(findings.unverified)
    gone = set(previous) - set(findings.instance_ids)
    recovered = sorted(gone & set(findings.verified))
    # Stopped, started again lately, or no longer tagged or terminated.
    left = sorted(gone - set(recovered) - set(findings.stopped) - set(findings.launched_recently))

    def named(instance_id: str) -> str:
        name = findings.names.get(instance_id, "")
        return f"{instance_id} ({name})" if name else instance_id

    if count:
        subject = f"vss-restore: {count} instance(s) without a verified backup in 26 h"
        lines = [
            f"{count} VSS-tagged instance(s) have no backup verified in the last 26 hours.",
            "",
        ]
    else:
        subject = "vss-restore: every VSS-tagged instance has a verified backup again"
        lines = ["Every VSS-tagged instance has a backup verified in the last 26 hours.", ""]
    for found in findings.unverified:
        lines.append(f"Instance:   {named(found.instance_id)}: {found.why}")
        lines.append(f"  last verified: {found.last_verified or 'never'}")
        for volume in found.volumes:
            status = volume.newest_status + (
                f" ({volume.newest_reason})" if volume.newest_status == tags.FAILED else ""
            )
            lines.append(
                f"  {volume.volume_id}: newest backup {volume.newest_snapshot} of "
                f"{volume.newest_started}, {status}"
            )
    lines.append("")
    for label, ids in (
        ("Verified again", recovered),
        ("No longer VSS-tagged or running", left),
        ("Not counted, stopped (the backup cannot run on them)", findings.stopped),
        ("Not counted, launched or started less than 26 h ago", findings.launched_recently),
    ):
        if ids:
            lines.append(f"{label}: {', '.join(named(i) for i in ids)}")
    lines += [
        "",
        "The snapshots' vss-restore:status and vss-restore:reason tags say more; "
        "`vss-restore report --since 2d` lists them.",
    ]
    return Alert(subject, "\n".join(lines))
