"""`vss-restore recover`: drives back from verified backups, on the simulated account."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from simulator import Simulation, load
from tests.cli.harness import Said, operating, pointed_at, vss_restore
from vss_restore import tags

RECOVERED = {"recovered-volume", "recovered-instance", "recovered-instance-launch-root"}


def two_backups() -> dict[str, Any]:
    """web1 (C: system, D:) backed up on night 1 (both verified by the workflow) and D: again
    on night 2 with no event (no verdict yet); a helper; a spare server in web1's AZ."""
    return {
        "name": "cli-recover",
        "start": "2026-11-24T23:40:00Z",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        # Room for --as-new-instance's launch beside the three (simulator/quotas.py).
        "quotas": {"on_demand_standard_vcpus": 16},
        "instances": {
            "web1": {
                "volumes": [
                    {
                        "alias": "C",
                        "device": "/dev/sda1",
                        "size": 30,
                        "drive_letters": ["C"],
                        "system": True,
                    },
                    {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
                ]
            },
            "spare": {},
            "helper": {"helper": True},
        },
        "steps": [
            {"at": 1200, "backup": "web1", "name": "night1"},
            {"at": 87600, "backup": "web1", "name": "night2", "volumes": ["D"], "events": "none"},
        ],
    }


@pytest.fixture(scope="module")
def backed_up() -> Iterator[Simulation]:
    with Simulation(load(two_backups())) as simulation:
        report = simulation.run()
        assert report.ok, report.failures
        with operating(simulation):
            simulation.clock.sleep(600)  # night 2's snapshot completes; no event says so
        yield simulation


def ec2(simulation: Simulation, region: str = "") -> Any:
    return boto3.client("ec2", region_name=region or simulation.world.region)


def recover(simulation: Simulation, *argv: str) -> Said:
    with operating(simulation):
        return vss_restore("recover", *argv, *pointed_at(simulation))


def recovered_volumes(simulation: Simulation) -> list[dict[str, Any]]:
    volumes = ec2(simulation).describe_volumes(
        Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": ["recovered-volume"]}]
    )["Volumes"]
    return list(volumes)


def consistent_of(simulation: Simulation, alias: str) -> str:
    snapshot_id = simulation.aliases.snapshots[alias]
    found = ec2(simulation).describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    return tags.as_dict(found["Tags"])[tags.RESULT_SNAPSHOT]


def cleaned(simulation: Simulation) -> None:
    """Delete what a test recovered (detached first), so that the next one starts afresh."""
    client = ec2(simulation)
    for volume in recovered_volumes(simulation):
        for attachment in volume.get("Attachments", []):
            if attachment["State"] == "attached":
                client.detach_volume(
                    VolumeId=volume["VolumeId"], InstanceId=attachment["InstanceId"]
                )
    with operating(simulation):
        simulation.clock.sleep(10)
    for volume in recovered_volumes(simulation):
        client.delete_volume(VolumeId=volume["VolumeId"])


def test_preview_shows_each_drive_its_verified_snapshot_and_creates_nothing(
    backed_up: Simulation,
) -> None:
    web1 = backed_up.aliases.instances["web1"]
    spare = backed_up.aliases.instances["spare"]

    said = recover(backed_up, "--instance", web1, "--to-instance", spare)

    assert said.code == 0, said.out + said.err
    assert f"recover {web1} (web1) as of" in said.out
    # D: of night 2 has no verdict: night 1's verified one is chosen, and the newer named.
    assert consistent_of(backed_up, "night1.D") in said.out
    assert consistent_of(backed_up, "night1.C") in said.out
    night2 = backed_up.aliases.snapshots["night2.D"]
    assert f"a newer backup, {night2}" in said.out
    assert "no restore has verified it yet" in said.out
    assert "nothing created: run again with --yes" in said.out
    assert recovered_volumes(backed_up) == []


def test_dry_run_prints_the_calls_and_makes_none(backed_up: Simulation) -> None:
    web1 = backed_up.aliases.instances["web1"]
    spare = backed_up.aliases.instances["spare"]

    said = recover(
        backed_up, "--instance", web1, "--drive", "D:", "--to-instance", spare, "--dry-run"
    )

    assert said.code == 0, said.out + said.err
    consistent = consistent_of(backed_up, "night1.D")
    assert f'would call CreateVolume {{"SnapshotId": "{consistent}"' in said.out
    assert '"VolumeType": "gp3"' in said.out
    assert "recovered-volume" in said.out
    assert "would call AttachVolume" in said.out
    assert '"Device": "xvdf"' in said.out
    assert recovered_volumes(backed_up) == []


def test_recover_a_drive_to_another_server_attaches_a_tagged_volume(
    backed_up: Simulation,
) -> None:
    web1 = backed_up.aliases.instances["web1"]
    spare = backed_up.aliases.instances["spare"]

    said = recover(backed_up, "--instance", web1, "--drive", "d", "--to-instance", spare, "--yes")

    assert said.code == 0, said.out + said.err
    (volume,) = recovered_volumes(backed_up)
    found = tags.as_dict(volume["Tags"])
    assert volume["SnapshotId"] == consistent_of(backed_up, "night1.D")
    assert volume["VolumeType"] == "gp3"
    assert volume["Attachments"][0]["InstanceId"] == spare
    assert volume["Attachments"][0]["Device"] == "xvdf"
    assert found[tags.DRIVE_LETTERS] == "D"
    assert found["vss-restore:recovered-by"].startswith("arn:aws:")
    assert found["vss-restore:recovered-at"].endswith("Z")
    assert f"attached to {spare}:\n  drive D:  {volume['VolumeId']} at xvdf" in said.out
    cleaned(backed_up)


def test_recover_to_the_original_server_stops_on_the_signature_collision(
    backed_up: Simulation,
) -> None:
    web1 = backed_up.aliases.instances["web1"]

    said = recover(backed_up, "--instance", web1, "--drive", "D", "--to-instance", web1, "--yes")

    assert said.code == 2
    assert "SIGNATURE COLLISION" in said.out
    d_volume = backed_up.aliases.volumes["web1.D"]
    assert f"comes from the same disk as {d_volume}" in said.out
    assert "stopped before creating anything" in said.err
    assert recovered_volumes(backed_up) == []


def test_with_new_signature_the_disk_is_attached_offline_and_windows_rewrites_it(
    backed_up: Simulation,
) -> None:
    web1 = backed_up.aliases.instances["web1"]

    said = recover(
        backed_up,
        "--instance",
        web1,
        "--drive",
        "D",
        "--to-instance",
        web1,
        "--new-signature",
        "--yes",
    )

    assert said.code == 0, said.out + said.err
    (volume,) = recovered_volumes(backed_up)
    host = backed_up.world.hosts[web1]
    backed_up.world.settle()
    disk = host.disk_of(volume["VolumeId"])
    assert disk is not None
    assert not disk.online
    disk.read_only = False  # the runbook's Set-Disk -IsReadOnly $false, while offline
    host.bring_online(disk)  # then its Set-Disk -IsOffline $false
    assert host.rewritten == [volume["VolumeId"]]
    assert "Set-Disk -Number N -IsOffline $false" in said.out
    cleaned(backed_up)


def test_as_new_instance_leaves_a_stopped_instance_with_every_drive_recovered(
    backed_up: Simulation,
) -> None:
    web1 = backed_up.aliases.instances["web1"]
    before = {v["VolumeId"] for v in ec2(backed_up).describe_volumes()["Volumes"]}

    said = recover(backed_up, "--instance", web1, "--as-new-instance", "--yes")

    assert said.code == 0, said.out + said.err
    client = ec2(backed_up)
    (reservation,) = client.describe_instances(
        Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": ["recovered-instance"]}]
    )["Reservations"]
    instance = reservation["Instances"][0]
    assert instance["State"]["Name"] == "stopped"
    source = client.describe_instances(InstanceIds=[web1])["Reservations"][0]["Instances"][0]
    assert instance["ImageId"] == source["ImageId"]
    assert instance["Placement"] == source["Placement"]
    devices = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]}
    volumes = {v["VolumeId"]: v for v in recovered_volumes(backed_up)}
    assert set(devices) == {"/dev/sda1", "xvdb"}
    assert volumes[devices["/dev/sda1"]]["SnapshotId"] == consistent_of(backed_up, "night1.C")
    assert volumes[devices["xvdb"]]["SnapshotId"] == consistent_of(backed_up, "night1.D")
    # The launch's own root is gone; nothing else new is untagged.
    after = {v["VolumeId"]: v for v in client.describe_volumes()["Volumes"]}
    for volume_id in set(after) - before:
        assert tags.as_dict(after[volume_id].get("Tags")).get(tags.RESOURCE) in RECOVERED
    assert "aws ec2 start-instances" in said.out
    assert instance["InstanceId"] in said.out
    assert "never shown to boot" in said.out
    client.terminate_instances(InstanceIds=[instance["InstanceId"]])
    cleaned(backed_up)


def test_volumes_only_in_a_zone_with_no_capacity_exits_2_and_leaves_nothing(
    backed_up: Simulation,
) -> None:
    web1 = backed_up.aliases.instances["web1"]
    backed_up.world.full_zones.add("us-east-1b")
    try:
        said = recover(
            backed_up,
            "--instance",
            web1,
            "--volumes-only",
            "--availability-zone",
            "us-east-1b",
            "--yes",
        )
    finally:
        backed_up.world.full_zones.clear()

    assert said.code == 2
    assert "us-east-1b has no capacity" in said.err
    assert "InsufficientVolumeCapacity" in said.err
    assert recovered_volumes(backed_up) == []


def test_volumes_only_creates_the_volumes_and_stops_there(backed_up: Simulation) -> None:
    web1 = backed_up.aliases.instances["web1"]

    said = recover(backed_up, "--instance", web1, "--volumes-only", "--yes")

    assert said.code == 0, said.out + said.err
    volumes = recovered_volumes(backed_up)
    assert len(volumes) == 2
    assert {v["State"] for v in volumes} == {"available"}
    assert {v["AvailabilityZone"] for v in volumes} == {"us-east-1a"}
    cleaned(backed_up)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--instance", "i-0123456789abcdef0", "--volumes-only"],
            "no instance i-0123456789abcdef0 in us-east-1, and no backups of it",
        ),
        (["--instance", "${helper}", "--volumes-only"], "no backups of"),
        (
            ["--instance", "${web1}", "--at", "2026-11-20", "--volumes-only"],
            "is before the first backup",
        ),
        (
            ["--instance", "${web1}", "--drive", "Q:", "--volumes-only"],
            "no backup of drive Q: (backed up: C:, D:)",
        ),
        (["--instance", "web1", "--volumes-only"], "is not an instance ID"),
        (["--instance", "${web1}", "--at", "last tuesday", "--volumes-only"], "not a UTC time"),
        (["--instance", "${web1}", "--volumes-only", "--initialization-rate", "500"], "100 to 300"),
        (
            ["--instance", "${web1}", "--volumes-only", "--subnet", "subnet-0123456789abcdef0"],
            "does not fit",
        ),
    ],
)
def test_bad_input_gets_a_clear_message_and_exit_2(
    backed_up: Simulation, argv: list[str], message: str
) -> None:
    instances = backed_up.aliases.instances
    argv = [
        a.replace("${web1}", instances["web1"]).replace("${helper}", instances["helper"])
        for a in argv
    ]

    said = recover(backed_up, *argv)

    assert said.code == 2
    assert message in said.err


def test_a_target_in_another_region_is_named(backed_up: Simulation) -> None:
    web1 = backed_up.aliases.instances["web1"]
    elsewhere = ec2(backed_up, "eu-west-1").run_instances(
        ImageId="ami-0c2b0d3fb02824d92", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]

    said = recover(backed_up, "--instance", web1, "--to-instance", elsewhere, "--yes")

    assert said.code == 2
    assert f"--to-instance {elsewhere} is in eu-west-1, the backups in us-east-1" in said.err
    assert recovered_volumes(backed_up) == []


def test_verify_first_restores_the_newest_backup_through_the_workflow_and_keeps_its_volume(
    backed_up: Simulation,
) -> None:
    """Last in the module: it verifies night 2's D: for good."""
    web1 = backed_up.aliases.instances["web1"]
    night2 = backed_up.aliases.snapshots["night2.D"]

    said = recover(
        backed_up, "--instance", web1, "--drive", "D", "--volumes-only", "--verify-first", "--yes"
    )

    assert said.code == 0, said.out + said.err
    assert f"restoring {night2} through the workflow first" in said.out
    (volume,) = recovered_volumes(backed_up)
    found = tags.as_dict(volume["Tags"])
    # The workflow's own volume, reverted and verified, now the operator's recovered volume.
    assert volume["SnapshotId"] == night2
    assert found[tags.SOURCE_SNAPSHOT] == night2
    assert found["vss-restore:recovered-from"] == consistent_of(backed_up, "night2.D")
    assert f"created in us-east-1a:\n  drive D:  {volume['VolumeId']}" in said.out
