"""Handler apply_retention: the daily retention over the account's snapshots (moto)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vss_restore import clock, tags
from vss_restore.aws.ec2 import (
    BACKUP_DESCRIPTION_PREFIX,
    CONSISTENT_DESCRIPTION,
    require_snapshot_ours,
)
from vss_restore.errors import NotOurs
from vss_restore.handlers import apply_retention
from vss_restore.observability import SNAPSHOTS_DELETED, SNAPSHOTS_EXPIRED, SNAPSHOTS_KEPT
from vss_restore.settings import Settings

NOW = datetime(2026, 11, 26, 12, 0, 5, tzinfo=UTC)  # the sample's schedule time
MARKER = {Settings().vss_tag_key: Settings().vss_tag_value}


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _snapshot(
    world: Any, started: datetime, snapshot_tags: dict[str, str], description: str = ""
) -> str:
    if (
        not description
        and tags.INSTANCE_ID in snapshot_tags
        and MARKER.items() <= snapshot_tags.items()
    ):
        description = f"{BACKUP_DESCRIPTION_PREFIX}i-0aaa1111bbb222333 D: (xvdf)"
    if not description and tags.SOURCE_SNAPSHOT in snapshot_tags:
        description = CONSISTENT_DESCRIPTION.format(source=snapshot_tags[tags.SOURCE_SNAPSHOT])
    snapshot_id = str(
        world.ec2.create_snapshot(
            VolumeId=world.source_volume_id,
            Description=description,
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags.as_list(snapshot_tags)}],
        )["SnapshotId"]
    )
    world.backend.snapshots[snapshot_id].start_time = _naive(started)
    return snapshot_id


def _nights(world: Any, count: int) -> list[tuple[str, str]]:
    """(backup, consistent) of each of the last `count` nights, oldest first, verified."""
    made = []
    for back in range(count - 1, -1, -1):
        night = NOW.replace(hour=0, minute=5, second=0) - timedelta(days=back)
        lineage = {tags.INSTANCE_ID: "i-0aaa1111bbb222333", tags.DEVICE: "xvdf"}
        backup = _snapshot(world, night, {**MARKER, **lineage})
        consistent = _snapshot(
            world,
            night + timedelta(minutes=20),
            {
                tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                tags.SOURCE_SNAPSHOT: backup,
                tags.BACKUP_TIME: clock.iso(night),
                **lineage,
            },
        )
        world.ec2.create_tags(
            Resources=[backup],
            Tags=tags.as_list(
                {
                    tags.STATUS: tags.VERIFIED,
                    tags.RESULT_SNAPSHOT: consistent,
                    tags.CHECKED_AT: clock.iso(night + timedelta(minutes=30)),
                }
            ),
        )
        made.append((backup, consistent))
    return made


@pytest.fixture
def account(world: Any, monkeypatch: pytest.MonkeyPatch, alert_topic: Any) -> Any:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    for name, value in (("KEEP_DAILY", "2"), ("KEEP_WEEKLY", "0"), ("KEEP_MONTHLY", "0")):
        monkeypatch.setenv(name, value)
    # The world's own snapshot: VSS-marked with the backup's tags, but not described as
    # BackupDocument describes its snapshots: someone else's, never judged.
    world.backend.snapshots[world.snapshot_id].start_time = _naive(NOW - timedelta(days=60))
    return world


def _left(world: Any) -> set[str]:
    return {s["SnapshotId"] for s in world.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_by_default_nothing_is_deleted_and_the_alert_says_what_would_be(
    account: Any, alert_topic: Any, sample: Any, lambda_context: Any, emitted_metrics: Any
) -> None:
    # Given 5 verified nights and a retention of 2 nights, as deployed (a dry run),
    nights = _nights(account, 5)
    before = _left(account)

    summary = apply_retention.handler(sample("apply_retention"), lambda_context)

    # then nothing goes; the 3 older nights are listed.
    assert _left(account) == before
    expired = {e["snapshot_id"] for e in summary["expired"]}
    assert expired == {s for pair in nights[:3] for s in pair}
    assert (summary["dry_run"], summary["deleted"]) == (True, [])
    ((subject, message),) = alert_topic.published()
    assert subject == "vss-restore: 6 expired snapshot(s) would be deleted (dry run)"
    assert "DeleteExpiredSnapshots is false: nothing was deleted" in message
    assert {SNAPSHOTS_KEPT, SNAPSHOTS_EXPIRED, SNAPSHOTS_DELETED} <= set(emitted_metrics())


def test_told_to_it_deletes_what_expired_and_only_ours(
    account: Any,
    alert_topic: Any,
    sample: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the same nights, deletion on, and old snapshots that are not ours: VSS-marked
    # but not made by the backup, someone's, and a production snapshot someone tagged with
    # our tags (its description, which no API changes, says otherwise),
    monkeypatch.setenv("DELETE_EXPIRED_SNAPSHOTS", "true")
    nights = _nights(account, 5)
    old = NOW - timedelta(days=90)
    marker_only = _snapshot(account, old, MARKER, "nightly VSS backup")
    someone = _snapshot(account, old, {"Name": "payroll"}, "payroll")
    forged = _snapshot(
        account,
        old,
        {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT, tags.SOURCE_SNAPSHOT: nights[0][0]},
        "payroll database, before the upgrade",
    )

    summary = apply_retention.handler(sample("apply_retention"), lambda_context)

    # then the 3 older nights go, and nothing else.
    kept = {s for pair in nights[3:] for s in pair}
    assert _left(account) == kept | {marker_only, someone, forged, account.snapshot_id}
    assert sorted(summary["deleted"]) == sorted({s for pair in nights[:3] for s in pair})
    ((subject, message),) = alert_topic.published()
    assert subject == "vss-restore: 6 expired snapshot(s) deleted"
    assert "xvdf: 4 snapshot(s), 2 night(s)" in message


def test_a_snapshot_is_deleted_only_when_its_tags_and_description_say_it_is_ours() -> None:
    key, value = Settings().vss_tag_key, Settings().vss_tag_value
    backup_tags = tags.as_list({**MARKER, tags.INSTANCE_ID: "i-1"})
    consistent_tags = tags.as_list(
        {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT, tags.SOURCE_SNAPSHOT: "snap-1"}
    )
    for ours in (
        {"SnapshotId": "snap-1", "Tags": backup_tags, "Description": BACKUP_DESCRIPTION_PREFIX},
        {
            "SnapshotId": "snap-2",
            "Tags": consistent_tags,
            "Description": CONSISTENT_DESCRIPTION.format(source="snap-1"),
        },
    ):
        require_snapshot_ours(ours, key, value)
    for theirs in (
        {"SnapshotId": "snap-3", "Tags": tags.as_list(MARKER), "Description": ""},
        {"SnapshotId": "snap-4", "Tags": backup_tags, "Description": "payroll"},
        {"SnapshotId": "snap-5", "Tags": consistent_tags, "Description": "payroll"},
        {
            "SnapshotId": "snap-6",
            "Tags": tags.as_list({tags.RESOURCE: tags.CONSISTENT_SNAPSHOT}),
            "Description": CONSISTENT_DESCRIPTION.format(source=""),
        },
    ):
        with pytest.raises(NotOurs, match=f"{theirs['SnapshotId']} is neither"):
            require_snapshot_ours(theirs, key, value)
