"""The boot test of system drives (#15 item 3, BootTest=Weekly, docs/boot-test.md), as the
operator's account shows it afterwards: the result on the consistent snapshot, the throwaway
instance terminated, no volume left."""

import json
from dataclasses import dataclass
from typing import Any

import pytest

from simulator import Report, Simulation, load
from tests.simulator.runs import SCENARIOS
from vss_restore import tags


@dataclass
class BootTestRun:
    report: Report
    results: dict[str, dict[str, str]]  # source alias -> its consistent snapshot's boot tags
    consistent: dict[str, str]  # source alias -> its consistent snapshot
    clones: list[dict[str, Any]]  # the throwaway instances, as DescribeInstances
    groups: dict[str, dict[str, Any]]  # their security groups
    roots_from: list[str]  # snapshots the boot test's roots were made from
    stack_group: str
    source_image: str


def _run(name: str) -> BootTestRun:
    document = json.loads((SCENARIOS / f"{name}.json").read_text())
    with Simulation(load(document)) as simulation:
        report = simulation.run()
        ec2 = simulation.ec2_client()
        results, consistent = {}, {}
        for alias, snapshot_id in simulation.aliases.snapshots.items():
            found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
            made = tags.as_dict(found.get("Tags")).get(tags.RESULT_SNAPSHOT)
            if not made:
                continue
            consistent[alias] = made
            made_tags = ec2.describe_snapshots(SnapshotIds=[made])["Snapshots"][0].get("Tags")
            results[alias] = {
                k: v for k, v in tags.as_dict(made_tags).items() if k in tags.BOOT_TEST_KEYS
            }
        found = ec2.describe_instances(
            Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.BOOT_TEST_INSTANCE]}]
        )
        clones = [i for r in found["Reservations"] for i in r["Instances"]]
        group_ids = {g["GroupId"] for i in clones for g in i.get("SecurityGroups", [])}
        groups = {
            g["GroupId"]: g
            for g in ec2.describe_security_groups(GroupIds=sorted(group_ids))["SecurityGroups"]
        }
        web1 = simulation.aliases.instances["web1"]
        source = ec2.describe_instances(InstanceIds=[web1])["Reservations"][0]["Instances"][0]
        clone_ids = set(simulation.fleet.boot_tests)
        return BootTestRun(
            report=report,
            results=results,
            consistent=consistent,
            clones=[c for c in clones if c["InstanceId"] in clone_ids],
            groups=groups,
            roots_from=[
                snapshot
                for volume, snapshot in simulation.world.volume_sources.items()
                if volume not in simulation.fleet.root_volumes
                and snapshot in set(consistent.values())
            ],
            stack_group=simulation.stack.names["BootTestSecurityGroup"],
            source_image=str(source["ImageId"]),
        )


@pytest.fixture(scope="module")
def booted() -> BootTestRun:
    return _run("boot-test")


@pytest.fixture(scope="module")
def never_online() -> BootTestRun:
    return _run("boot-test-never-online")


def test_the_system_drives_consistent_snapshot_is_marked_booted(booted: BootTestRun) -> None:
    assert booted.report.ok, booted.report.failures
    result = booted.results["night1.C"]
    assert result[tags.BOOT_TEST] == tags.BOOTED
    assert result[tags.BOOT_TESTED_AT].startswith("2026-11-25T")
    assert result[tags.BOOT_TEST_REASON].startswith("SSM Online 24")  # the modelled 240 s
    # Two starts, each billed at least a minute; the price shown (HelperHourlyPrice 0.188).
    assert int(result[tags.BOOT_TEST_SECONDS]) >= 120
    assert "0.188 USD/h" in result[tags.BOOT_TEST_REASON]


def test_a_data_drive_is_never_booted_and_the_next_night_is_not_due(booted: BootTestRun) -> None:
    assert booted.results["night1.D"] == {}
    assert booted.results["night2.C"] == {}  # C: was boot-tested within 7 days
    assert len(booted.clones) == 1


def test_the_clone_booted_the_consistent_root_on_the_sources_own_image(
    booted: BootTestRun,
) -> None:
    [clone] = booted.clones
    assert clone["ImageId"] == booted.source_image
    assert booted.roots_from == [booted.consistent["night1.C"]]
    # Its instance profile (gone from a terminated instance here) is the helpers', or IAM
    # refuses the launch (tests/security/test_boot_test.py); the run saw no refusal.
    assert not [f for f in booted.report.failures if "refused" in f]
    assert [g["GroupId"] for g in clone["SecurityGroups"]] == [booted.stack_group]
    assert clone["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in clone


def test_the_clone_can_reach_nothing_but_the_ssm_endpoints(booted: BootTestRun) -> None:
    group = booted.groups[booted.stack_group]
    assert group["IpPermissions"] == []
    [rule] = group["IpPermissionsEgress"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert rule["IpRanges"] == []
    assert len(rule["UserIdGroupPairs"]) == 1


@pytest.mark.parametrize("run", ["booted", "never_online"])
def test_nothing_is_left_running_or_lying_around(run: str, request: pytest.FixtureRequest) -> None:
    found: BootTestRun = request.getfixturevalue(run)
    assert [c["State"]["Name"] for c in found.clones] == ["terminated"]
    assert found.report.volumes_left == []
    assert not [f for f in found.report.failures if "left" in f]


def test_a_clone_that_never_comes_online_is_a_failed_boot_test_with_its_reason(
    never_online: BootTestRun,
) -> None:
    assert never_online.report.ok, never_online.report.failures
    result = never_online.results["night1.C"]
    assert result[tags.BOOT_TEST] == tags.FAILED
    assert result[tags.BOOT_TEST_REASON].startswith(
        "not SSM Online 20 min after the start (system status ok, instance status impaired)"
    )
    # Bounded: HelperBootMinutes after the start, then terminated (about 21 minutes billed).
    assert 20 * 60 <= int(result[tags.BOOT_TEST_SECONDS]) <= 23 * 60


def test_a_failed_boot_test_alerts_once_and_a_booted_one_not(
    booted: BootTestRun, never_online: BootTestRun
) -> None:
    assert booted.report.alerts == []
    [alert] = never_online.report.alerts
    consistent = never_online.consistent["night1.C"]
    assert alert["subject"] == f"vss-restore: {consistent} did not boot"
    assert "not SSM Online 20 min after the start" in alert["message"]


def test_a_failed_boot_test_leaves_the_restores_verdict_alone(never_online: BootTestRun) -> None:
    [snapshot] = [s for s in never_online.report.snapshots if s.alias == "night1.C"]
    assert snapshot.verdict == "verified"
