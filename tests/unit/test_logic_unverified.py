"""Which VSS-tagged instances count as unverified, and the alert that names them."""

from datetime import UTC, datetime, timedelta
from typing import Any

from vss_restore import clock, tags
from vss_restore.logic.unverified import (
    NO_RECENT_BACKUP,
    NOT_VERIFIED_YET,
    RESTORE_FAILED,
    judge,
    unverified_alert,
)
from vss_restore.settings import Settings

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
SETTINGS = Settings()
VSS = {SETTINGS.vss_tag_key: SETTINGS.vss_tag_value}


def _instance(instance_id: str, *volumes: str, state: str = "running") -> dict[str, Any]:
    return {
        "InstanceId": instance_id,
        "State": {"Name": state},
        "LaunchTime": NOW - timedelta(days=30),
        "Tags": tags.as_list({"Name": instance_id.removeprefix("i-")}),
        "BlockDeviceMappings": [{"DeviceName": "xvd", "Ebs": {"VolumeId": v}} for v in volumes],
    }


def _snapshot(
    snapshot_id: str, volume_id: str, hours_ago: float, verdict: str = "", **more: str
) -> dict[str, Any]:
    started = NOW - timedelta(hours=hours_ago)
    snapshot_tags = {**VSS, **more}
    if verdict:
        snapshot_tags[tags.STATUS] = verdict
        snapshot_tags[tags.CHECKED_AT] = clock.iso(started + timedelta(minutes=10))
    return {
        "SnapshotId": snapshot_id,
        "VolumeId": volume_id,
        "State": "completed",
        "StartTime": started,
        "Tags": tags.as_list(snapshot_tags),
    }


def test_every_backed_up_volume_needs_its_own_recent_verification() -> None:
    instances = [_instance("i-0a", "vol-c", "vol-d", "vol-never-snapshotted")]
    snapshots = [
        _snapshot("snap-c", "vol-c", 7, tags.VERIFIED),
        _snapshot("snap-d", "vol-d", 7, tags.FAILED, **{tags.REASON: "RevertFailed: x"}),
        _snapshot("snap-d-old", "vol-d", 31, tags.VERIFIED),
    ]

    [found] = judge(instances, snapshots, SETTINGS, NOW).unverified

    assert (found.why, [v.volume_id for v in found.volumes]) == (RESTORE_FAILED, ["vol-d"])
    assert found.last_verified == "2026-11-26T00:10:00Z"


def test_the_reason_follows_the_late_volumes_newest_backup() -> None:
    instances = [_instance("i-0b", "vol-b"), _instance("i-0c", "vol-c")]
    snapshots = [
        _snapshot("snap-b", "vol-b", 40, tags.VERIFIED),  # the backup stopped
        _snapshot("snap-c-old", "vol-c", 40, tags.VERIFIED),
        _snapshot("snap-c", "vol-c", 2),  # tonight's, its restore still to come
    ]

    found = judge(instances, snapshots, SETTINGS, NOW).unverified

    assert [(u.instance_id, u.why) for u in found] == [
        ("i-0b", NO_RECENT_BACKUP),
        ("i-0c", NOT_VERIFIED_YET),
    ]


def test_a_verified_snapshot_of_awss_vss_tooling_counts_and_our_own_output_does_not() -> None:
    aws_vss = _snapshot("snap-a", "vol-a", 5, tags.VERIFIED)
    aws_vss["Tags"] = [t for t in aws_vss["Tags"] if t["Key"] not in VSS] + tags.as_list(
        {tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "{}"}
    )
    ours = _snapshot("snap-b", "vol-b", 5, tags.VERIFIED, **{tags.RESOURCE: "consistent-snapshot"})

    findings = judge(
        [_instance("i-0a", "vol-a"), _instance("i-0b", "vol-b")], [aws_vss, ours], SETTINGS, NOW
    )

    assert findings.verified == ["i-0a"]
    assert [(u.instance_id, u.why) for u in findings.unverified] == [("i-0b", "never backed up")]


def test_a_malformed_checked_at_tag_is_no_verification() -> None:
    snapshot = _snapshot("snap-a", "vol-a", 3, tags.VERIFIED)
    snapshot["Tags"] = tags.as_list({**VSS, tags.STATUS: tags.VERIFIED, tags.CHECKED_AT: "soon"})

    [found] = judge([_instance("i-0a", "vol-a")], [snapshot], SETTINGS, NOW).unverified

    assert (found.why, found.last_verified) == (NO_RECENT_BACKUP, "")


def test_the_alert_says_who_is_verified_again_and_who_is_no_longer_counted() -> None:
    instances = [_instance("i-0a", "vol-a"), _instance("i-0p", "vol-p", state="stopped")]
    findings = judge(instances, [_snapshot("snap-a", "vol-a", 3, tags.VERIFIED)], SETTINGS, NOW)

    alert = unverified_alert(findings, previous=["i-0a", "i-0p", "i-0gone"])

    assert alert.subject == "vss-restore: every VSS-tagged instance has a verified backup again"
    assert "Verified again: i-0a (0a)" in alert.message
    assert "No longer VSS-tagged or running: i-0gone" in alert.message
    assert "stopped (the backup cannot run on them): i-0p (0p)" in alert.message
