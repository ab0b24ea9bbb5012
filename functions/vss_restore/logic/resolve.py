"""Whether a snapshot should be restored, and what the restore needs to know about it."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from vss_restore import tags
from vss_restore.aws.ec2 import is_snapshot_ours
from vss_restore.errors import SnapshotUnusable
from vss_restore.settings import Settings

RESTORE = "restore"
# Already consistent: inspect and check, no revert, no new snapshot (AWS's own VSS tooling;
# and, re-verified, our own verified consistent snapshot, whose backup OneCopy deleted).
VERIFY = "verify"
SKIP = "skip"

# Why a snapshot is skipped: stated in the execution output and the simulator's report.
NOT_VSS = "not-vss-tagged"
NOT_COMPLETED = "not-completed"
ALREADY_VERIFIED = "already-verified"
OWN_OUTPUT = "made-by-vss-restore"
# Our consistent snapshot, deleted by a failed restore's cleanup while pending: EBS deletes it
# once it completes, and its completion event then names a snapshot that is gone.
OWN_OUTPUT_DELETED = "made-by-vss-restore-and-deleted"
BEING_RESTORED = "being-restored-by-another-execution"
NOT_VERIFIED = "not-verified-so-not-reverified"


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    snapshot_id: str
    source_volume_id: str = ""
    volume_size: int = 0
    encrypted: bool = False
    kms_key_id: str = ""
    shadow_copy_id: str = ""
    shadow_set_id: str = ""
    drive_letters: str = ""
    instance_id: str = ""
    check: bool = True
    started_at: str = ""
    device: str = ""
    backup_time: str = ""  # the source snapshot's StartTime, ISO 8601 UTC

    def lineage(self) -> dict[str, str]:
        return lineage(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    snapshot: dict[str, Any], settings: Settings, started_at: str = "", reverify: bool = False
) -> Decision:
    """Restore, verify or skip; a re-verification restores only a snapshot verified before
    (its first restore is the nightly workflow's, with a verdict and a consistent snapshot),
    and only checks our own verified consistent snapshot (check-only)."""
    snapshot_id = str(snapshot["SnapshotId"])
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    state = snapshot.get("State")
    if reverify and _our_verified_consistent(snapshot, settings):
        return _check_only(snapshot, started_at)
    if snapshot_tags.get(tags.RESOURCE):
        return Decision(SKIP, OWN_OUTPUT, snapshot_id)
    made_by_aws_vss = (
        snapshot_tags.get(tags.AWS_APP_CONSISTENT, "").lower() == "true"
        and tags.AWS_VSS_CONFIG in snapshot_tags
    )
    if not made_by_aws_vss and snapshot_tags.get(settings.vss_tag_key) != settings.vss_tag_value:
        return Decision(SKIP, NOT_VSS, snapshot_id)
    if state == "error":
        raise SnapshotUnusable(
            f"{snapshot_id} is in the error state: {snapshot.get('StateMessage', '')}"
        )
    if state != "completed":
        return Decision(SKIP, NOT_COMPLETED, snapshot_id)
    verified = snapshot_tags.get(tags.STATUS) == tags.VERIFIED
    if verified and not reverify:
        return Decision(SKIP, ALREADY_VERIFIED, snapshot_id)
    if reverify and not verified:
        return Decision(SKIP, NOT_VERIFIED, snapshot_id)
    return Decision(
        VERIFY if made_by_aws_vss else RESTORE,
        "",
        snapshot_id,
        **_ebs_facts(snapshot),
        shadow_copy_id=snapshot_tags.get(tags.SHADOW_COPY_ID, ""),
        shadow_set_id=snapshot_tags.get(tags.SHADOW_SET_ID, ""),
        drive_letters=snapshot_tags.get(tags.DRIVE_LETTERS, ""),
        instance_id=snapshot_tags.get(tags.INSTANCE_ID, ""),
        check=made_by_aws_vss or settings.check_after_revert,
        started_at=started_at,
        # AWS's VSS tooling writes Device (FIELD-NOTES §4), the nightly backup its own key.
        device=snapshot_tags.get(tags.DEVICE) or snapshot_tags.get("Device", ""),
        backup_time=_iso(snapshot.get("StartTime")),
    )


def _ebs_facts(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What EBS says of the snapshot that the volume made from it needs."""
    return {
        "source_volume_id": str(snapshot.get("VolumeId", "")),
        "volume_size": int(snapshot.get("VolumeSize", 0)),
        "encrypted": bool(snapshot.get("Encrypted", False)),
        "kms_key_id": str(snapshot.get("KmsKeyId", "")),
    }


def _our_verified_consistent(snapshot: dict[str, Any], settings: Settings) -> bool:
    """One of our consistent snapshots (tags and the description the workflow gave it),
    completed and itself tagged verified (OneCopy marks it so before deleting its source)."""
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    return (
        snapshot_tags.get(tags.RESOURCE) == tags.CONSISTENT_SNAPSHOT
        and snapshot_tags.get(tags.STATUS) == tags.VERIFIED
        and snapshot.get("State") == "completed"
        and is_snapshot_ours(snapshot, settings.vss_tag_key, settings.vss_tag_value)
    )


def _check_only(snapshot: dict[str, Any], started_at: str) -> Decision:
    """Our consistent snapshot holds the drive reverted already: inspect and check its
    volume, no revert and no new snapshot; the drive and night come from its lineage."""
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    return Decision(
        VERIFY,
        "",
        str(snapshot["SnapshotId"]),
        **_ebs_facts(snapshot),
        shadow_set_id=snapshot_tags.get(tags.SHADOW_SET_ID, ""),
        drive_letters=snapshot_tags.get(tags.DRIVE_LETTERS, ""),
        instance_id=snapshot_tags.get(tags.INSTANCE_ID, ""),
        check=True,
        started_at=started_at,
        device=snapshot_tags.get(tags.DEVICE, ""),
        backup_time=snapshot_tags.get(tags.BACKUP_TIME, ""),
    )


def lineage(source: Mapping[str, Any]) -> dict[str, str]:
    """What the consistent snapshot carries over from its source (a Decision's fields, as
    the state machine keeps them in `$.source`), as tags; empty values left out."""
    found = {
        tags.INSTANCE_ID: source.get("instance_id"),
        tags.DRIVE_LETTERS: source.get("drive_letters"),
        tags.DEVICE: source.get("device"),
        tags.SHADOW_SET_ID: source.get("shadow_set_id"),
        tags.BACKUP_TIME: source.get("backup_time"),
    }
    return {key: str(value) for key, value in found.items() if value}


def _iso(moment: Any) -> str:
    """A DescribeSnapshots time (datetime from boto3) as ISO 8601 UTC; "" if absent."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment or "")
