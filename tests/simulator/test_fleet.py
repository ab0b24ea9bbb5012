"""The helper fleet (#13, HelperMode=fleet): helpers launched for the night's restores, as
the operator's account shows them, and gone by morning."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest

from simulator import Report, Simulation, load
from tests.simulator.runs import SCENARIOS, failures
from vss_restore import tags
from vss_restore.aws.ledger import helper_key


@dataclass
class FleetRun:
    report: Report
    instances: list[dict[str, Any]]  # every helper the fleet launched, as DescribeInstances
    groups: dict[str, dict[str, Any]]  # security group ID -> DescribeSecurityGroups
    volumes: dict[str, dict[str, Any]]  # the helpers' root volumes still there
    restored: list[str]  # the temporary volumes the workflow created from night1.D
    source_tags: dict[str, str]  # night1.D's tags
    commands_on: set[str]  # instances the disk tool ran on
    stack_group: str
    stack_profile: str


def _scenario(name: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCENARIOS / f"{name}.json").read_text())
    loaded.update(changes)
    return loaded


def _fleet_run(document: dict[str, Any]) -> FleetRun:
    with Simulation(load(document)) as simulation:
        report = simulation.run()
        ec2 = simulation.ec2_client()
        found = ec2.describe_instances(
            Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.LAUNCHED_HELPER]}]
        )
        instances = [i for r in found["Reservations"] for i in r["Instances"]]
        groups = {
            g["GroupId"]: g
            for i in instances
            for g in ec2.describe_security_groups(
                GroupIds=[s["GroupId"] for s in i.get("SecurityGroups", [])]
            )["SecurityGroups"]
        }
        roots = [
            m["Ebs"]["VolumeId"]
            for i in instances
            for m in i.get("BlockDeviceMappings", [])
            if i["State"]["Name"] == "running"
        ]
        volumes = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=roots)["Volumes"]}
        snapshot = simulation.aliases.snapshots["night1.D"]
        restored = [
            v for v, source in simulation.world.volume_sources.items() if source == snapshot
        ]
        tags_of = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0].get("Tags", [])
        return FleetRun(
            report=report,
            instances=instances,
            groups=groups,
            volumes=volumes,
            restored=restored,
            source_tags={t["Key"]: t["Value"] for t in tags_of},
            commands_on={i.instance_id for i in simulation.agents.log},
            stack_group=simulation.stack.names["HelperSecurityGroup"],
            stack_profile=simulation.stack.names["HelperInstanceProfile"],
        )


@pytest.fixture(scope="module")
def launched() -> FleetRun:
    """fleet-launch stopped before the helper's idle time is up: it is still running."""
    scenario = _scenario("fleet-launch")
    scenario["steps"] = scenario["steps"][:1]
    return _fleet_run(scenario)


def test_a_restore_with_no_helper_running_launches_one_and_is_verified_on_it(
    launched: FleetRun,
) -> None:
    [helper] = launched.instances
    assert launched.source_tags[tags.STATUS] == tags.VERIFIED
    assert launched.commands_on == {helper["InstanceId"]}
    assert launched.report.helpers[0]["instance_id"] == helper["InstanceId"]


def test_the_launched_helper_is_ours_isolated_and_hardened(launched: FleetRun) -> None:
    [helper] = launched.instances
    found = {t["Key"]: t["Value"] for t in helper["Tags"]}
    assert found[tags.HELPER] == tags.HELPER_VALUE
    assert found[tags.RESOURCE] == tags.LAUNCHED_HELPER
    assert helper["MetadataOptions"]["HttpTokens"] == "required"
    assert helper["IamInstanceProfile"]["Arn"].endswith(f"/{launched.stack_profile}")
    assert [g["GroupId"] for g in helper["SecurityGroups"]] == [launched.stack_group]
    assert launched.groups[launched.stack_group]["IpPermissions"] == []  # no inbound rule
    assert helper["ImageId"] == "ami-0f1e2d3c4b5a69788"  # what the public parameter names
    [root] = launched.volumes.values()
    assert root["Encrypted"] is True


def test_a_run_that_ends_with_a_helper_of_ours_running_fails(launched: FleetRun) -> None:
    [helper] = launched.instances
    assert not launched.report.ok
    assert f"helpers of ours left running: {helper['InstanceId']}" in launched.report.failures


@pytest.mark.parametrize(
    "name",
    [
        "fleet-launch",
        "fleet-capacity",
        "fleet-quota",
        "fleet-never-online",
        "fleet-image-not-usable",
        "fleet-burst",
    ],
)
def test_each_fleet_scenario_meets_its_expectations_with_nothing_left_running(name: str) -> None:
    with Simulation(load(SCENARIOS / f"{name}.json")) as simulation:
        report = simulation.run()

    assert report.ok, failures(report)
    assert not [h for h in report.helpers if h["running"]]
    for helper in report.helpers:  # billed per second, one minute at least, at the price
        assert helper["seconds"] >= 60
        assert helper["cost_usd"] == round(helper["seconds"] * 0.188 / 3600, 4)


def test_no_capacity_in_the_sources_zone_launches_in_the_next_subnet_and_restores_there() -> None:
    run = _fleet_run(_scenario("fleet-capacity"))

    assert run.report.ok, failures(run.report)
    [helper] = run.instances
    assert [h["zone"] for h in run.report.helpers] == ["us-east-1b"]
    assert helper["Placement"]["AvailabilityZone"] == "us-east-1b"
    # The volume is attached there: EC2 attaches only within the instance's zone.
    assert run.commands_on == {helper["InstanceId"]}
    assert len(run.restored) == 1


def test_an_image_that_is_not_windows_fails_before_anything_is_created() -> None:
    run = _fleet_run(_scenario("fleet-image-not-usable"))

    assert run.report.ok, failures(run.report)
    assert run.instances == []
    assert run.restored == []
    assert run.source_tags[tags.REASON].startswith("HelperImageNotUsable: HelperImage ami-")


def test_a_helper_that_never_comes_online_is_terminated_and_the_restore_fails_clearly() -> None:
    run = _fleet_run(_scenario("fleet-never-online"))

    assert run.report.ok, failures(run.report)
    [helper] = run.instances
    assert helper["State"]["Name"] == "terminated"
    assert run.source_tags[tags.REASON].startswith("HelperNeverOnline: ")
    assert "ssm, ssmmessages and ec2messages" in run.source_tags[tags.REASON]
    assert run.restored == []


def test_named_mode_never_launches_anything() -> None:
    with Simulation(load(SCENARIOS / "shared-helper.json")) as simulation:
        report = simulation.run()

    assert report.ok, failures(report)
    assert report.helpers == []


def test_by_default_a_helper_is_launched_and_the_backed_up_server_is_never_one() -> None:
    """As deployed with its defaults (HelperMode unset: fleet), web1 backed up and tagged as a
    helper as the origin's setup has it: the revert runs on a launched helper only."""
    scenario = _scenario("no-helper-configured")
    del scenario["parameters"]["HelperMode"]
    # Two helpers and web1 need 6 vCPUs: an account whose quota was raised (README, prerequisites).
    scenario["quotas"] = {"on_demand_standard_vcpus": 16}
    scenario["steps"].append({"advance": 1800})  # the idle helper is retired
    scenario["expect"] = {
        "snapshots": {"night1.D": {"verdict": "verified"}, "night1.C": {"verdict": "verified"}},
        "helpers_launched": 2,  # C: and D: at once, HelperConcurrency 1
    }
    run = _fleet_run(scenario)

    assert run.report.ok, failures(run.report)
    assert run.commands_on == {i["InstanceId"] for i in run.instances}
    assert len(run.commands_on) == 2
    assert {i["State"]["Name"] for i in run.instances} == {"terminated"}


def test_the_demo_shows_each_launched_helper_terminated_with_its_billed_seconds_and_cost() -> None:
    with Simulation(load(SCENARIOS / "nightly-fleet.json")) as simulation:  # make demo
        report = simulation.run()

    assert report.ok, failures(report)
    table = report.table()
    assert len(report.helpers) == 2
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line}
    for helper in report.helpers:
        billed, cost = f"{helper['seconds']:.0f}", f"{helper['cost_usd']:.4f}"
        assert rows[helper["instance_id"]] == [helper["zone"], billed, cost, "terminated"]
    assert "helpers: 2 launched, " in table
    assert table.endswith(f"IAM: {report.calls_allowed} calls allowed, 0 refused\nOK")


def test_an_idle_helper_is_terminated_only_once_idle_for_helper_idle_minutes() -> None:
    # HelperIdleMinutes (default 10): no restore held or waited for a turn on it this long.
    # Its idle time starts when the last turn is given back, not when a schedule run last
    # saw it busy (up to one five-minute period earlier).
    # The moment is the helper's `freed_at` in the ledger (Ledger.give_back_turn); the
    # executions end later (the consistent snapshot, its paced slot, the verdict).
    with Simulation(load(SCENARIOS / "nightly-fleet.json")) as simulation:  # make demo
        report = simulation.run()
        helpers = list(simulation.fleet.launched.values())
        ledger = boto3.client("dynamodb", region_name=simulation.world.region)
        freed = {
            h.instance_id: int(
                ledger.get_item(
                    TableName=simulation.stack.tables["Ledger"],
                    Key={"pk": {"S": helper_key(h.instance_id)}},
                    ConsistentRead=True,
                )["Item"]["freed_at"]["N"]
            )
            for h in helpers
        }
    assert report.ok, failures(report)
    restores = [e for e in report.executions if e.state_transitions > 10]
    last_end = max(
        datetime.fromisoformat(e.started_at).timestamp() + e.virtual_seconds for e in restores
    )
    idle_minutes, schedule_minutes = 10, 5
    for helper in helpers:
        assert helper.terminated_at is not None
        assert freed[helper.instance_id] <= last_end
        idle = helper.terminated_at.timestamp() - freed[helper.instance_id]
        assert idle_minutes * 60 <= idle <= (idle_minutes + 2 * schedule_minutes) * 60, idle


def test_a_subnet_that_cannot_reach_ssm_launches_a_helper_that_never_comes_online() -> None:
    # fleet-never-online's story, with no fault: the ssmmessages endpoint is gone from the
    # VPC, whose subnets have no route out (simulator/helpers.py, reaches_ssm).
    scenario = _scenario("fleet-never-online")
    scenario.pop("fleet")
    with Simulation(load(scenario)) as simulation:
        ec2 = simulation.ec2_client()
        region = simulation.world.region
        [endpoint] = ec2.describe_vpc_endpoints(
            Filters=[{"Name": "service-name", "Values": [f"com.amazonaws.{region}.ssmmessages"]}]
        )["VpcEndpoints"]
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
        report = simulation.run()

    assert report.ok, failures(report)
    assert len(report.helpers) == 1
