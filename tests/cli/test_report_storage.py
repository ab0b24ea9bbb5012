"""`vss-restore report --storage`: the kept snapshots' changed data, measured with EBS direct
APIs' ListChangedBlocks on the simulator (simulator/ebs.py answers from its block model)."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from operator_cli import changed
from simulator import Simulation, ebs, load
from simulator.disks import BLOCK_SIZE, DAILY_CHANGE, GIB, WRITE_RATE
from tests.cli.harness import pointed_at, vss_restore
from vss_restore import tags

NIGHTS = {
    "name": "storage-two-nights",
    "description": "web1's D: (1 TiB) backed up and verified two nights running.",
    "start": "2026-11-24T23:40:00Z",
    "parameters": {"HelperInstanceIds": "${instance:helper}"},
    "instances": {
        "web1": {
            "volumes": [
                {"alias": "C", "device": "/dev/sda1", "size": 30, "system": True},
                {"alias": "D", "device": "xvdb", "size": 1024, "drive_letters": ["D"]},
            ]
        },
        "helper": {"helper": True},
    },
    "steps": [
        {"at": 1200, "backup": "web1", "name": "night1", "volumes": ["D"]},
        {"at": 87600, "backup": "web1", "name": "night2", "volumes": ["D"]},
    ],
    "expect": {
        "snapshots": {"night1.D": {"verdict": "verified"}, "night2.D": {"verdict": "verified"}}
    },
}
MIB = 1024**2


@pytest.fixture(scope="module")
def nights() -> Iterator[Simulation]:
    with Simulation(load(NIGHTS)) as simulation:
        report = simulation.run()
        assert report.ok, report.failures
        yield simulation


def storage(simulation: Simulation, *extra: str) -> dict[str, Any]:
    said = vss_restore("report", "--storage", "--format", "json", *extra, *pointed_at(simulation))
    assert said.code == 0, said.err
    found: dict[str, Any] = json.loads(said.out)["storage"]["measured"]
    return found


def consistent_of(simulation: Simulation, alias: str) -> str:
    ec2 = boto3.client("ec2", region_name=simulation.world.region)
    (made,) = ec2.describe_snapshots(
        Filters=[
            {"Name": f"tag:{tags.SOURCE_SNAPSHOT}", "Values": [simulation.aliases.snapshots[alias]]}
        ]
    )["Snapshots"]
    return str(made["SnapshotId"])


def blocks(size: float) -> int:
    return int(size) // BLOCK_SIZE


def test_report_storage_measures_each_consistent_snapshot_and_each_night_with_its_cost(
    nights: Simulation,
) -> None:
    measured = storage(nights)

    (web1,) = measured["instances"]
    assert web1["instance_id"] == nights.aliases.instances["web1"]
    # The model (simulator/disks.py): after the shadow copy the writers go on for
    # shadow_copy_seconds; the revert writes those blocks back, so each consistent snapshot
    # differs from its source by them.
    after_shadow = blocks(WRITE_RATE * nights.world.timing.shadow_copy_seconds)
    assert web1["consistent_gib"] == round(2 * after_shadow * BLOCK_SIZE / GIB, 3)
    # Night 2 against night 1: the day's writes, those after the shadow copy and their old
    # contents copied into its diff area.
    partition = (1024 * GIB - 2 * MIB) // MIB * MIB
    night = blocks(partition * DAILY_CHANGE) + 2 * after_shadow
    assert web1["backups_gib"] == round(night * BLOCK_SIZE / GIB, 3)
    assert web1["pairs_measured"] == 3
    assert web1["unmeasured"] == []
    changed_gib = (2 * after_shadow + night) * BLOCK_SIZE / GIB
    assert web1["monthly_usd"] == round(changed_gib * 0.05, 2)
    assert measured["monthly_usd"] == web1["monthly_usd"]
    html = vss_restore("report", "--storage", "--format", "html", *pointed_at(nights)).out
    assert f"<h2>Measured changes: ${web1['monthly_usd']:,.2f} a month</h2>" in html


def test_report_storage_table_shows_the_measured_gib_and_what_was_not_measured(
    nights: Simulation,
) -> None:
    nights.world.ebs_refused.add(consistent_of(nights, "night2.D"))
    try:
        said = vss_restore("report", "--storage", *pointed_at(nights))
    finally:
        nights.world.ebs_refused.clear()

    assert said.code == 0, said.err
    section = said.out.split("\nMEASURED CHANGES: $", 1)[1]
    web1 = nights.aliases.instances["web1"]
    (row,) = [line for line in section.splitlines() if line.startswith(f"  {web1}")]
    assert row.split()[1:2] == ["2"]  # pairs measured: night 1's consistent, night 2's backup
    assert row.split()[-1] == "1"  # not measured
    source, refused = nights.aliases.snapshots["night2.D"], consistent_of(nights, "night2.D")
    assert (
        f"  not measured: {web1} {source} -> {refused}: no permission "
        "(ebs:ListChangedBlocks, or kms:Decrypt on its key): User is not authorized to perform: "
        f"ebs:ListChangedBlocks on resource: arn:aws:ec2:us-east-1::snapshot/{refused}"
    ) in section
    # Without --storage the report makes no EBS direct APIs call and shows no measure.
    assert "MEASURED CHANGES" not in vss_restore("report", *pointed_at(nights)).out


def test_report_storage_pages_through_the_changes_within_its_bound_of_calls(
    nights: Simulation, capsys: pytest.CaptureFixture[str]
) -> None:
    # Night 2 against night 1 is more than 10,000 blocks (the most a page holds): 3 pages.
    partition = (1024 * GIB - 2 * MIB) // MIB * MIB
    assert 2 * changed.PAGE < blocks(partition * DAILY_CHANGE) < 3 * changed.PAGE
    whole = storage(nights)["instances"][0]
    # 3 calls for the nights, 1 for night 1's consistent snapshot: night 2's is left.
    bounded = storage(nights, "--storage-calls", "4")["instances"][0]

    assert whole["pairs_measured"] == 3
    assert bounded["pairs_measured"] == 2
    assert bounded["backups_gib"] == whole["backups_gib"]
    assert bounded["consistent_gib"] == whole["consistent_gib"] / 2
    ((first, second, reason),) = [tuple(u.values()) for u in bounded["unmeasured"]]
    assert (first, second) == (
        nights.aliases.snapshots["night2.D"],
        consistent_of(nights, "night2.D"),
    )
    assert reason == "the bound of 4 ListChangedBlocks calls was reached"
    refused = vss_restore("report", "--storage", "--storage-calls", "0", *pointed_at(nights))
    assert refused.code == 2
    assert "'0' is not a number of calls from 1 to 10000" in capsys.readouterr().err


def test_report_storage_reports_throttling_that_outlasts_the_retries(
    nights: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Others' tools use up the account's quota for as long as the SDK retries (5 attempts).
    monkeypatch.setattr(ebs, "REQUESTS_PER_SECOND", 0)
    measured = storage(nights)

    (web1,) = measured["instances"]
    assert web1["pairs_measured"] == 0
    assert {u["reason"] for u in web1["unmeasured"]} == {
        "throttled after retries (the account's ListChangedBlocks quota): run again later"
    }


def test_report_storage_names_a_consistent_snapshot_of_another_lineage(
    nights: Simulation,
) -> None:
    # What encryption by default makes of an unencrypted source: a volume encrypted with a
    # key its snapshot does not have, whose snapshot is a full copy of a lineage of its own.
    ec2 = boto3.client("ec2", region_name=nights.world.region)
    kms = boto3.client("kms", region_name=nights.world.region)
    key = kms.create_key(Description="encryption by default")["KeyMetadata"]["Arn"]
    source = nights.aliases.snapshots["night1.D"]
    made = ec2.describe_snapshots(SnapshotIds=[consistent_of(nights, "night1.D")])["Snapshots"][0]
    volume = ec2.create_volume(
        SnapshotId=source, AvailabilityZone="us-east-1a", Encrypted=True, KmsKeyId=key
    )["VolumeId"]
    nights.clock.sleep(60)
    other = ec2.create_snapshot(
        VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": made["Tags"]}]
    )["SnapshotId"]
    nights.clock.sleep(600)
    try:
        measured = storage(nights)
    finally:
        ec2.delete_snapshot(SnapshotId=other)
        ec2.delete_volume(VolumeId=volume)

    (web1,) = measured["instances"]
    assert {(u["first"], u["second"]) for u in web1["unmeasured"]} == {(source, other)}
    assert web1["unmeasured"][0]["reason"] == (
        "another lineage (encrypted with another key than its source?): "
        "a full copy, not measurable as changes"
    )


def test_list_changed_blocks_allows_50_calls_a_second_and_checks_its_parameters(
    nights: Simulation,
) -> None:
    client = boto3.client(
        "ebs",
        region_name=nights.world.region,
        # No retry, and no check in the SDK: the service's own answers.
        config=Config(retries={"mode": "standard", "max_attempts": 1}, parameter_validation=False),
    )
    pair = {
        "FirstSnapshotId": nights.aliases.snapshots["night1.D"],
        "SecondSnapshotId": consistent_of(nights, "night1.D"),
    }
    nights.clock.sleep(1)  # a second of its own
    for _ in range(50):
        client.list_changed_blocks(**pair, MaxResults=100)
    with pytest.raises(ClientError) as throttled:
        client.list_changed_blocks(**pair, MaxResults=100)
    nights.clock.sleep(1)
    first = client.list_changed_blocks(**pair, MaxResults=100)
    with pytest.raises(ClientError) as too_small:
        client.list_changed_blocks(**pair, MaxResults=99)

    assert throttled.value.response["Error"]["Code"] == "RequestThrottledException"
    assert throttled.value.response["Reason"] == "ACCOUNT_THROTTLED"
    assert too_small.value.response["Error"]["Code"] == "ValidationException"
    assert first["BlockSize"] == 524288
    assert first["VolumeSize"] == 1024
    assert len(first["ChangedBlocks"]) == 100
    indexes = [b["BlockIndex"] for b in first["ChangedBlocks"]]
    assert indexes == sorted(set(indexes))
    rest = client.list_changed_blocks(**pair, MaxResults=10_000, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    assert rest["ChangedBlocks"][0]["BlockIndex"] > indexes[-1]
    assert len(first["ChangedBlocks"]) + len(rest["ChangedBlocks"]) == blocks(
        WRITE_RATE * nights.world.timing.shadow_copy_seconds
    )


def test_report_storage_is_refused_over_many_places_before_reading_any() -> None:
    said = vss_restore("report", "--storage", "--regions", "us-east-1,eu-west-1")

    assert (said.code, said.err) == (
        2,
        "vss-restore: --storage measures one place: not with --profiles/--regions\n",
    )
