"""The retention over many simulated nights: the real RetentionFunction, its role from
template.yaml judging every call, on the simulated account's snapshots.

A light model of the nights keeps 40 of them fast: each night the backup's snapshot of each
drive is made as BackupDocument tags it, and its restore's outcome as the workflow leaves
it (a consistent snapshot with its lineage, the verdict on the source), without running the
workflow (its own tests do). The retention itself runs as deployed: its schedule fires it,
and its calls go through the simulated EC2, SNS and DynamoDB.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from simulator import Simulation, load
from simulator.runner import Report
from vss_restore import tags
from vss_restore.aws.ec2 import BACKUP_DESCRIPTION_PREFIX, CONSISTENT_DESCRIPTION

START = datetime.fromisoformat("2026-11-01T00:00:00+00:00")
DRIVES = {"C": "/dev/sda1", "D": "xvdb"}
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine-sim:night-"


def _scenario(**parameters: str) -> dict[str, Any]:
    return {
        "name": "retention",
        "start": START.isoformat(),
        "parameters": parameters,
        "instances": {
            "web1": {
                "volumes": [
                    {
                        "alias": "C",
                        "device": DRIVES["C"],
                        "size": 30,
                        "drive_letters": ["C"],
                        "system": True,
                    },
                    {"alias": "D", "device": DRIVES["D"], "size": 50, "drive_letters": ["D"]},
                ]
            }
        },
        "steps": [],
    }


@contextmanager
def _account(**parameters: str) -> Iterator[Simulation]:
    with Simulation(load(_scenario(**parameters))) as simulation, simulation.operate():
        yield simulation


def _backup_night(simulation: Simulation, night: int, *, restored: bool = True) -> dict[str, str]:
    """The night's backup of each drive, and (restored) its verified consistent snapshot."""
    ec2 = simulation.ec2_client()
    instance = simulation.aliases.lookup("instance", "web1")
    made: dict[str, str] = {}
    # No completion events: no workflow runs in this light model (the restore is played).
    simulation.world.snapshot_event_kind = ""
    for drive, device in DRIVES.items():
        volume = simulation.aliases.lookup("volume", f"web1.{drive}")
        backup_tags = {
            "ConsistentSnapshot": "WindowsVSS",
            tags.INSTANCE_ID: instance,
            tags.DEVICE: device.removeprefix("/dev/"),
            tags.DRIVE_LETTERS: drive,
        }
        made[drive] = ec2.create_snapshot(
            VolumeId=volume,
            Description=f"{BACKUP_DESCRIPTION_PREFIX}{instance} {drive}: ({device})",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags.as_list(backup_tags)}],
        )["SnapshotId"]
    simulation.clock.sleep(3600)  # the snapshots complete (3 min), restores take their time
    if restored:
        for drive, source in made.items():
            when = START + timedelta(days=night)
            consistent = ec2.create_snapshot(
                VolumeId=simulation.aliases.lookup("volume", f"web1.{drive}"),
                Description=CONSISTENT_DESCRIPTION.format(source=source),
                TagSpecifications=[
                    {
                        "ResourceType": "snapshot",
                        "Tags": tags.as_list(
                            {
                                tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                                tags.SOURCE_SNAPSHOT: source,
                                tags.EXECUTION: f"{EXECUTION}{night}",
                                tags.INSTANCE_ID: instance,
                                tags.DEVICE: DRIVES[drive].removeprefix("/dev/"),
                                tags.BACKUP_TIME: when.isoformat().replace("+00:00", "Z"),
                            }
                        ),
                    }
                ],
            )["SnapshotId"]
            simulation.clock.sleep(600)
            ec2.create_tags(
                Resources=[source],
                Tags=tags.as_list(
                    {
                        tags.STATUS: tags.VERIFIED,
                        tags.RESULT_SNAPSHOT: consistent,
                        tags.CHECKED_AT: simulation.clock.now().isoformat(),
                    }
                ),
            )
    simulation.world.snapshot_event_kind = "createSnapshot"
    return made


def _retention_at_noon(simulation: Simulation) -> None:
    now = simulation.clock.now()
    noon = datetime.combine(now.date(), datetime.min.time(), now.tzinfo) + timedelta(hours=12)
    simulation.clock.sleep((noon - now).total_seconds())
    simulation.fire_schedule("RetentionFunction")
    simulation.clock.sleep(600)


def _ours(simulation: Simulation) -> list[dict[str, Any]]:
    ec2 = simulation.ec2_client()
    return [
        s
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if tags.INSTANCE_ID in tags.as_dict(s.get("Tags"))
        or tags.RESOURCE in tags.as_dict(s.get("Tags"))
    ]


def _nights_kept(snapshots: list[dict[str, Any]], device: str, kind: str) -> set[date]:
    nights = set()
    for snapshot in snapshots:
        found = tags.as_dict(snapshot.get("Tags"))
        is_consistent = found.get(tags.RESOURCE) == tags.CONSISTENT_SNAPSHOT
        if found.get(tags.DEVICE) != device or is_consistent != (kind == "consistent"):
            continue
        nights.add(snapshot["StartTime"].date())
    return nights


def _last_run(simulation: Simulation) -> dict[str, Any]:
    (last,) = [i for i in simulation.functions.invocations if i.function == "RetentionFunction"][
        -1:
    ]
    assert not last.error, last.message
    summary: dict[str, Any] = json.loads(getattr(last, "payload", b"{}"))
    return summary


def _report(simulation: Simulation) -> Report:
    return simulation.report()


def test_forty_nights_keep_the_retentions_nights_and_delete_the_rest() -> None:
    # Given the defaults (7 nights, 4 weeks, 3 months) with deletion switched on, and the
    # old snapshots the retention must never touch: one of ours being restored (a temporary
    # volume made from it), a VSS-marked snapshot the backup did not make, AWS's own.
    with _account(DeleteExpiredSnapshots="true") as simulation:
        ec2 = simulation.ec2_client()
        first = _backup_night(simulation, 0)
        web1_d = simulation.aliases.lookup("volume", "web1.D")
        zone = ec2.describe_volumes(VolumeIds=[web1_d])["Volumes"][0]["AvailabilityZone"]
        ec2.create_volume(
            SnapshotId=first["D"],
            AvailabilityZone=zone,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": tags.as_list(
                        {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: first["D"]}
                    ),
                }
            ],
        )
        simulation.world.snapshot_event_kind = ""
        foreign = {
            ec2.create_snapshot(
                VolumeId=web1_d,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags.as_list(marks)}],
            )["SnapshotId"]
            for marks in (
                {"ConsistentSnapshot": "WindowsVSS"},  # the marker alone: not the backup's
                {tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "{}"},
                # a production snapshot someone gave our tags: its description says not ours
                {
                    "ConsistentSnapshot": "WindowsVSS",
                    tags.INSTANCE_ID: simulation.aliases.lookup("instance", "web1"),
                    tags.DEVICE: "xvdb",
                },
            )
        }
        simulation.world.snapshot_event_kind = "createSnapshot"
        _retention_at_noon(simulation)
        bound = 7 + 4 + 3
        most = 0
        # When 40 nights pass, the retention running each noon,
        for night in range(1, 40):
            simulation.clock.sleep(12 * 3600)
            _backup_night(simulation, night)
            _retention_at_noon(simulation)
            # (what the run says it kept, each drive; the account is read once, at the end)
            most = max(most, *_last_run(simulation)["per_drive"].values())
        snapshots = _ours(simulation)
        left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
        report = _report(simulation)

    # Then each drive keeps the newest backup of the last 7 nights (Dec 4-10), of the last
    # 4 ISO weeks (Dec 10, 6, Nov 29, 22) and of the last 3 months that have one (Dec 10,
    # Nov 30), each with its consistent snapshot, plus the one being restored (Nov 1, D:);
    expected = {date(2026, 12, d) for d in range(4, 11)} | {
        date(2026, 11, 22),
        date(2026, 11, 29),
        date(2026, 11, 30),
    }
    assert _nights_kept(snapshots, "sda1", "backup") == expected
    assert _nights_kept(snapshots, "sda1", "consistent") == expected
    assert _nights_kept(snapshots, "xvdb", "backup") == expected | {date(2026, 11, 1)}
    # (the consistent snapshot of Nov 1 went: only the backup was being restored)
    assert _nights_kept(snapshots, "xvdb", "consistent") == expected
    # never more than the bound of points per drive (two snapshots each) at any noon,
    assert most <= 2 * bound + 1
    # and nothing that is not ours was touched.
    assert foreign <= left
    assert first["D"] in left
    deletions = [a for a in report.alerts if "expired snapshot(s) deleted" in a["subject"]]
    assert deletions, "the retention alerts with what it deleted"
    assert "would be deleted" not in "".join(a["message"] for a in deletions)
    assert report.calls_allowed > 0
    assert report.calls_refused == []
    assert report.lambda_errors == []


def test_the_default_is_a_dry_run_that_says_what_it_would_delete() -> None:
    # Given the stack's defaults, with the keeps made short (3 nights, no weeks, no months),
    with _account(KeepDaily="3", KeepWeekly="0", KeepMonthly="0") as simulation:
        # when 6 nights pass and the retention runs after each,
        for night in range(6):
            _backup_night(simulation, night)
            _retention_at_noon(simulation)
            simulation.clock.sleep(12 * 3600)
        snapshots = _ours(simulation)
        report = _report(simulation)

    # then nothing is deleted: 6 nights of 2 drives, each a backup and a consistent snapshot,
    assert len(snapshots) == 6 * 2 * 2
    # and the last alert lists the 3 oldest nights' 12 snapshots it would delete.
    last = [a for a in report.alerts if "would be deleted (dry run)" in a["subject"]][-1]
    assert last["subject"] == "vss-restore: 12 expired snapshot(s) would be deleted (dry run)"
    assert "DeleteExpiredSnapshots is false: nothing was deleted" in last["message"]
    assert last["message"].count("expired: outside the last 3 nights") == 12
    assert report.lambda_errors == []


def test_one_copy_keeps_the_consistent_snapshot_alone_once_verified() -> None:
    # Given OneCopy with deletion on,
    with _account(DeleteExpiredSnapshots="true", OneCopy="true") as simulation:
        # when 4 nights pass,
        for night in range(4):
            _backup_night(simulation, night)
            _retention_at_noon(simulation)
            simulation.clock.sleep(12 * 3600)
        snapshots = _ours(simulation)
        report = _report(simulation)

    # then the 3 older nights keep only their consistent snapshot, now tagged verified
    # itself, and the newest night both (the hourly look reads its source's verdict).
    for device in ("sda1", "xvdb"):
        assert _nights_kept(snapshots, device, "backup") == {date(2026, 11, 4)}
        assert _nights_kept(snapshots, device, "consistent") == {
            date(2026, 11, d) for d in range(1, 5)
        }
    marked = [s for s in snapshots if tags.as_dict(s.get("Tags")).get(tags.STATUS) == tags.VERIFIED]
    assert len(marked) == 2 * 3 + 2  # 6 consistent ones marked, the 2 newest sources
    assert report.lambda_errors == []
