"""`vss-restore doctor` with HelperMode=fleet: can the workflow launch a helper that reaches
SSM? Against a healthy fleet account and one where each fleet check fails once."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
from moto.ec2.models import ec2_backends

from operator_cli.doctor_fleet import quota_check, subnet_check
from simulator import Simulation, load
from simulator.quotas import DEFAULT_STANDARD_VCPUS
from tests.cli.harness import vss_restore
from vss_restore import tags
from vss_restore.aws.ledger import helper_key
from vss_restore.settings import Settings
from vss_restore.turns import TURN_LEASE_SECONDS

VSS = {"ConsistentSnapshot": "WindowsVSS"}


# The healthy account's vCPU quota (Service Quotas ec2/L-1216C47A), raised from the new
# account's 5 (simulator/quotas.py) as the README asks: MaxHelpers 5 m6i.large of 2 vCPUs
# and the account's own instances fit.
RAISED_QUOTA = 32


def estate(zones: list[str], steps: list[dict[str, Any]], quota: float) -> dict[str, Any]:
    """A backed-up Windows server (for a week, when a night is run; else launched today), the
    fleet's subnets one per zone, and the account's vCPU quota."""
    return {
        "name": "cli-doctor-fleet",
        "start": "2026-11-25T00:00:00Z",
        "parameters": {"HelperMode": "fleet"},
        "fleet": {"zones": zones},
        "quotas": {"on_demand_standard_vcpus": quota},
        "instances": {
            "web1": {
                "tags": VSS,
                "launched_before": 7 * 86400 if steps else 3600,
                "volumes": [
                    {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True},
                    {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
                ],
            },
        },
        "steps": steps,
    }


@contextmanager
def account(
    zones: list[str], steps: list[dict[str, Any]], quota: float = RAISED_QUOTA
) -> Iterator[Simulation]:
    with Simulation(load(estate(zones, steps, quota))) as simulation:
        if steps:
            report = simulation.run()
            assert report.ok, report.failures
        sns: Any = boto3.client("sns", region_name=simulation.world.region)
        topic = simulation.stack.outputs["AlertTopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        yield simulation


def doctor(simulation: Simulation, *more: str) -> Any:
    return vss_restore("doctor", "--region", simulation.world.region, *more)


def subnets(simulation: Simulation) -> list[str]:
    return simulation.stack.parameters["HelperSubnetIds"].split(",")


def test_a_healthy_fleet_account_passes_every_check() -> None:
    night = [{"backup": "web1", "name": "night1", "volumes": ["D"]}, {"advance": 1800}]
    with account(["us-east-1a", "us-east-1b"], night) as simulation:
        said = doctor(simulation)
        checks = json.loads(doctor(simulation, "--json").out)["checks"]
        group = simulation.stack.outputs["HelperSecurityGroupId"]
        first, second = subnets(simulation)
        vpc = simulation.stack.parameters["HelperVpcId"]

    found = {c["name"]: c for c in checks}
    failed = [c["name"] for c in checks if not c["ok"]]
    assert failed == []
    # Read from Service Quotas: 5 m6i.large of 2 vCPUs within the account's quota.
    assert found["vCPU quota"]["found"] == (
        "10 vCPUs for 5 m6i.large (MaxHelpers), quota 32 (shared with the account's other"
        " instances)"
    )
    assert found[f"subnet {first}"]["found"] == f"in {vpc}, us-east-1a"
    assert found[f"subnet {second}"]["found"] == f"in {vpc}, us-east-1b"
    for subnet in (first, second):
        assert found[f"SSM from {subnet}"]["found"] == (
            "VPC endpoints ssm, ssmmessages, ec2messages (private DNS)"
        )
    assert found["helper image"]["found"].endswith(
        "names ami-0f1e2d3c4b5a69788: Windows, runs on m6i.large"
    )
    assert found["instance type m6i.large"]["found"] == "offered in us-east-1a, us-east-1b"
    assert found["helper security group"]["found"] == f"{group}: no inbound rule"
    # The night's helper was retired after its idle time: none is left.
    assert found["running helpers"]["found"].startswith("none")
    assert "helpers" not in found  # the named mode's check is not made
    assert said.code == 0
    assert said.out.splitlines()[-1] == "all checks passed"


def _launch_our_helper(
    simulation: Simulation, subnet: str, token: str = "doctor-test-old-helper"
) -> str:
    """A helper of ours, as the fleet launches it (tagged at launch)."""
    ec2 = simulation.ec2_client()
    parameter = simulation.stack.parameters["HelperImage"]
    image = boto3.client("ssm", region_name=simulation.world.region).get_parameter(Name=parameter)[
        "Parameter"
    ]["Value"]
    helper_tags = [
        {"Key": tags.HELPER, "Value": tags.HELPER_VALUE},
        {"Key": tags.RESOURCE, "Value": tags.LAUNCHED_HELPER},
    ]
    instance = ec2.run_instances(
        ImageId=image,
        InstanceType="m6i.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        ClientToken=token,
        TagSpecifications=[{"ResourceType": "instance", "Tags": helper_tags}],
    )["Instances"][0]
    return str(instance["InstanceId"])


def _thirteen_hours_old(simulation: Simulation, instance_id: str, hours: float = 13) -> None:
    """As if RetireHelpers had not run for 13 hours (the clock moves the launch back)."""
    backend = ec2_backends[simulation.world.account_id][simulation.world.region]
    instance = backend.get_instance(instance_id)
    instance.launch_time = simulation.world.clock.now() - timedelta(hours=hours)


def _turn_held_on(simulation: Simulation, instance_id: str) -> None:
    """A restore holds one of the helper's turns, as the ledger keeps it (turns.py)."""
    ledger = boto3.client("dynamodb", region_name=simulation.world.region)
    until = int(simulation.world.clock.now().timestamp()) + 3600
    ledger.put_item(
        TableName=simulation.stack.outputs["LedgerTable"],
        Item={
            "pk": {"S": helper_key(instance_id)},
            "holders": {"M": {"execution|snap-0123456789abcdef0": {"N": str(until)}}},
        },
    )


def test_a_helper_draining_past_max_hours_with_work_on_it_warns_and_fails_past_the_lease() -> None:
    with account(["us-east-1a"], []) as simulation:
        [subnet] = subnets(simulation)
        draining = _launch_our_helper(simulation, subnet)
        _thirteen_hours_old(simulation, draining)
        _turn_held_on(simulation, draining)
        stuck = _launch_our_helper(simulation, subnet, token="doctor-test-stuck-helper")
        _thirteen_hours_old(simulation, stuck, hours=12 + TURN_LEASE_SECONDS / 3600 + 1)
        _turn_held_on(simulation, stuck)
        said = doctor(simulation)
        checks = json.loads(doctor(simulation, "--json").out)["checks"]

    found = {c["name"]: c for c in checks}
    warned = found[f"helper {draining}"]
    assert warned["ok"] is True
    assert warned["warn"] is True
    assert warned["found"] == (
        "running, 13.0 h old, older than HelperMaxHours 12: draining, 1 restore(s) holding or"
        " waiting for its turns (it takes no new work and is terminated once they are done)"
    )
    assert f"WARN  helper {draining}" in said.out
    failed = found[f"helper {stuck}"]
    assert failed["ok"] is False
    assert (
        failed["found"]
        == "running, 19.0 h old, older than HelperMaxHours 12 and the 6 h turn lease"
    )
    assert f"FAIL  helper {stuck}" in said.out


def test_each_fleet_misconfiguration_fails_its_own_check_with_what_to_do() -> None:
    # A new account's quota, as AWS gives it (5 vCPUs): five helpers of 2 vCPUs do not fit.
    zones = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]
    with account(zones, [], quota=DEFAULT_STANDARD_VCPUS) as simulation:
        region = simulation.world.region
        ec2 = simulation.ec2_client()
        gone, private, natted, unoffered = subnets(simulation)
        vpc = simulation.stack.parameters["HelperVpcId"]
        group = simulation.stack.outputs["HelperSecurityGroupId"]
        old_helper = _launch_our_helper(simulation, private)
        _thirteen_hours_old(simulation, old_helper)
        # Someone deletes a subnet, the ssmmessages endpoint (one subnet has a NAT route, so
        # it still reaches SSM), the helper image, and opens RDP on the helpers' group.
        ec2.delete_subnet(SubnetId=gone)
        [endpoint] = ec2.describe_vpc_endpoints(
            Filters=[{"Name": "service-name", "Values": [f"com.amazonaws.{region}.ssmmessages"]}]
        )["VpcEndpoints"]
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
        nat = _nat_route(ec2, vpc, natted)
        image_id = simulation_image(simulation)
        ec2.deregister_image(ImageId=image_id)
        ec2.authorize_security_group_ingress(
            GroupId=group, IpProtocol="tcp", FromPort=3389, ToPort=3389, CidrIp="0.0.0.0/0"
        )

        said = doctor(simulation)
        checks = json.loads(doctor(simulation, "--json").out)["checks"]

    failed = {c["name"]: c for c in checks if not c["ok"]}
    passed = {c["name"]: c for c in checks if c["ok"]}
    assert sorted(failed) == sorted(
        [
            f"subnet {gone}",
            f"SSM from {private}",
            f"SSM from {unoffered}",
            "helper image",
            "instance type m6i.large",
            "helper security group",
            "vCPU quota",
            f"helper {old_helper}",
        ]
    )
    assert failed[f"subnet {gone}"]["found"] == "does not exist here"
    assert failed[f"SSM from {private}"]["found"] == (
        "no VPC endpoint with private DNS for ssmmessages, and no route 0.0.0.0/0 to a public"
        " NAT gateway: a helper launched here never comes SSM Online"
    )
    assert f"com.amazonaws.{region}.{{ssmmessages}}" in failed[f"SSM from {private}"]["fix"]
    assert passed[f"SSM from {natted}"]["found"] == f"0.0.0.0/0 through NAT gateway {nat}"
    assert image_id in failed["helper image"]["found"]
    assert "does not exist" in failed["helper image"]["found"]
    assert failed["instance type m6i.large"]["found"] == (
        "not offered in us-east-1e: launches there fail (Unsupported)"
    )
    assert failed["helper security group"]["found"] == (
        f"{group} allows inbound tcp 3389-3389 from 0.0.0.0/0: the helpers need none"
        " (SSM calls out)"
    )
    assert f"--group-id {group}" in failed["helper security group"]["fix"]
    assert failed[f"helper {old_helper}"]["found"] == (
        "running, 13.0 h old, older than HelperMaxHours 12"
    )
    assert f"--instance-ids {old_helper}" in failed[f"helper {old_helper}"]["fix"]
    assert failed["vCPU quota"]["found"] == "10 vCPUs for 5 m6i.large (MaxHelpers), quota 5"
    assert failed["vCPU quota"]["fix"] == (
        "request an increase of L-1216C47A in Service Quotas, or lower MaxHelpers"
    )
    assert said.code == 1
    assert f"{len(failed)} of {len(checks)} checks failed" in said.out


def simulation_image(simulation: Simulation) -> str:
    parameter = simulation.stack.parameters["HelperImage"]
    ssm: Any = boto3.client("ssm", region_name=simulation.world.region)
    return str(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])


def _nat_route(ec2: Any, vpc: str, subnet: str) -> str:
    """The subnet's own route table sends 0.0.0.0/0 to a public NAT gateway (in a public
    subnet of the VPC, whose own route goes to an internet gateway)."""
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.99.0/24")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    outward = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=outward, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    ec2.associate_route_table(RouteTableId=outward, SubnetId=public)
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=address)["NatGateway"][
        "NatGatewayId"
    ]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return str(nat)


def test_a_subnet_of_another_vpc_fails_its_check() -> None:
    subnet = {"SubnetId": "subnet-0123456789abcdef0", "VpcId": "vpc-0aaaaaaaaaaaaaaaa"}

    check = subnet_check("subnet-0123456789abcdef0", subnet, "vpc-0bbbbbbbbbbbbbbbb")

    assert not check.ok
    assert check.found == "is in vpc-0aaaaaaaaaaaaaaaa, not HelperVpcId vpc-0bbbbbbbbbbbbbbbb"


def test_the_vcpu_quota_must_hold_max_helpers_of_the_type() -> None:
    settings = Settings(max_helpers=5, helper_instance_type="m6i.large")

    short = quota_check(8.0, settings, vcpus=2)
    enough = quota_check(10.0, settings, vcpus=2)

    assert not short.ok
    assert short.found == "10 vCPUs for 5 m6i.large (MaxHelpers), quota 8"
    assert "L-1216C47A" in short.fix
    assert enough.ok
