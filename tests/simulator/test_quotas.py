"""EC2's On-Demand standard vCPU quota (simulator/quotas.py): RunInstances refuses beyond it,
Service Quotas reports it, and the fleet-quota scenario's restore waits for room."""

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from simulator import Simulation, load, quotas
from simulator.clock import VirtualClock
from simulator.faults import Faults
from simulator.patching import Patches
from simulator.world import Timing, World
from tests.simulator.runs import SCENARIOS, failures
from vss_restore import tags

IMAGE = "ami-12c6146b"  # any image: moto does not check it


@pytest.fixture
def account() -> Iterator[tuple[Any, Any]]:
    """moto with only the quota model, at 4 vCPUs: EC2 and Service Quotas clients."""
    with (
        mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}),
        mock_aws(),
    ):
        world = World(VirtualClock(), Timing(), Faults([]))
        world.standard_vcpu_quota = 4
        patches = Patches()
        try:
            quotas.install(patches, world)
            yield (
                boto3.client("ec2", region_name="us-east-1"),
                boto3.client("service-quotas", region_name="us-east-1"),
            )
        finally:
            patches.close()


def _run(ec2: Any, instance_type: str) -> str:
    found = ec2.run_instances(ImageId=IMAGE, InstanceType=instance_type, MinCount=1, MaxCount=1)
    return str(found["Instances"][0]["InstanceId"])


def test_run_instances_beyond_the_vcpu_quota_is_refused_until_an_instance_stops(
    account: tuple[Any, Any],
) -> None:
    ec2, _ = account
    first = _run(ec2, "t3.large")
    _run(ec2, "m6i.large")  # 2 + 2: the quota's 4 vCPUs

    with pytest.raises(ClientError) as refused:
        _run(ec2, "t3.micro")
    ec2.stop_instances(InstanceIds=[first])
    again = _run(ec2, "m6i.large")

    error = refused.value.response["Error"]
    assert error["Code"] == "VcpuLimitExceeded"
    assert error["Message"].startswith(
        "You have requested more vCPU capacity than your current vCPU limit of 4 allows for the"
        " instance bucket that the specified instance type belongs to."
    )
    assert again.startswith("i-")


def test_instances_of_other_quotas_are_neither_counted_nor_refused(
    account: tuple[Any, Any],
) -> None:
    ec2, _ = account
    _run(ec2, "g4dn.xlarge")  # 4 vCPUs, in "All G and VT instances": not this quota
    _run(ec2, "m6i.xlarge")  # 4 vCPUs: the standard quota, whole

    with pytest.raises(ClientError, match="VcpuLimitExceeded"):
        _run(ec2, "c5.large")


def test_service_quotas_answers_the_modelled_quota_and_no_other_ec2_quota(
    account: tuple[Any, Any],
) -> None:
    _, service_quotas = account

    quota = service_quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]
    with pytest.raises(ClientError) as unknown:
        service_quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-34B43A08")  # Spot

    assert quota["Value"] == 4.0
    assert quota["QuotaName"] == (
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
    )
    assert quota["QuotaArn"] == "arn:aws:servicequotas:us-east-1:123456789012:ec2/L-1216C47A"
    assert unknown.value.response["Error"]["Code"] == "NoSuchResourceException"


@pytest.mark.parametrize(
    ("instances", "expected"),
    [(1, quotas.DEFAULT_STANDARD_VCPUS), (4, 8.0)],  # t3.large: 2 vCPUs each
)
def test_unset_the_quota_is_a_new_accounts_or_just_what_the_instances_run(
    instances: int, expected: float
) -> None:
    estate = {f"web{n}": {} for n in range(1, instances + 1)}
    with Simulation(load({"name": "unset", "instances": estate, "steps": []})) as simulation:
        answered = boto3.client("service-quotas", region_name=simulation.world.region)
        quota = answered.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]
        with pytest.raises(ClientError, match="VcpuLimitExceeded"):
            simulation.ec2_client().run_instances(
                ImageId=IMAGE, InstanceType="m6i.xlarge", MinCount=1, MaxCount=1
            )

    assert quota["Value"] == expected
    assert quotas.DEFAULT_STANDARD_VCPUS == 5.0  # Service Quotas' AWS default for L-1216C47A


def test_at_the_quota_the_restore_waits_for_room_then_launches_its_helper() -> None:
    """fleet-quota: web1 and batch1 use the 4 vCPUs; the helper fits once batch1 stops."""
    said: list[str] = []
    scenario = load(SCENARIOS / "fleet-quota.json")
    with Simulation(scenario, progress=said.append) as simulation:
        report = simulation.run()
        found = simulation.ec2_client().describe_instances(
            Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.LAUNCHED_HELPER]}]
        )
        helpers = [i for r in found["Reservations"] for i in r["Instances"]]

    assert report.ok, failures(report)
    stopped = next(n for n, line in enumerate(said) if "step 2: someone stops batch1" in line)
    refused = [n for n, line in enumerate(said) if "HelperLaunchDelayed: VcpuLimitExceeded" in line]
    assert refused  # tried again later, each time refused by the quota
    assert max(refused) < stopped
    assert "current vCPU limit of 4 allows" in said[refused[0]]
    [helper] = helpers
    assert helper["LaunchTime"] >= scenario.start + timedelta(seconds=300)
    assert helper["State"]["Name"] == "terminated"
    assert report.snapshot("night1.D").verdict == "verified"
