"""HelperMode=fleet, the pure rules (logic/fleet.py) and the two fleet handlers' samples."""

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.conftest import World
from vss_restore.handlers import helper_online, retire_helpers
from vss_restore.logic.fleet import image_problems, subnet_order

WINDOWS = {"State": "available", "Platform": "windows", "Architecture": "x86_64"}


def test_a_windows_x86_image_fits_an_x86_type() -> None:
    assert image_problems(WINDOWS, "m6i.large", ["x86_64", "i386"]) == []


@pytest.mark.parametrize(
    ("image", "architectures", "problem"),
    [
        (None, ["x86_64"], "does not exist"),
        (
            {**WINDOWS, "Platform": None, "PlatformDetails": "Linux/UNIX"},
            ["x86_64"],
            "not a Windows",
        ),
        ({**WINDOWS, "Architecture": "arm64"}, ["x86_64"], "is arm64, not x86_64"),
        (WINDOWS, [], "EC2 knows no instance type"),
        ({**WINDOWS, "State": "deregistered"}, ["x86_64"], "not available"),
    ],
)
def test_an_image_no_helper_can_run_is_named_with_why(
    image: dict[str, Any] | None, architectures: list[str], problem: str
) -> None:
    assert problem in "; ".join(image_problems(image, "m6i.large", architectures))


def test_the_sources_zone_comes_first_then_the_operators_order() -> None:
    subnets = [
        {"SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a"},
        {"SubnetId": "subnet-b", "AvailabilityZone": "us-east-1b"},
        {"SubnetId": "subnet-c", "AvailabilityZone": "us-east-1c"},
    ]
    assert [s for s, _ in subnet_order(subnets, "us-east-1b")] == [
        "subnet-b",
        "subnet-a",
        "subnet-c",
    ]


def test_a_running_online_helper_is_ready_at_once(
    world: World, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, stubbed: Any
) -> None:
    from vss_restore.aws.ssm import Ssm

    client, stubber = stubbed("ssm")
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                {"InstanceId": world.helper_id, "PingStatus": "Online", "PlatformType": "Windows"}
            ]
        },
        {"Filters": [{"Key": "InstanceIds", "Values": [world.helper_id]}]},
    )
    monkeypatch.setattr(helper_online, "Ssm", lambda: Ssm(client=client))

    result = helper_online.handler(world.event("helper_online"), lambda_context)

    assert result == {
        "instance_id": world.helper_id,
        "availability_zone": world.helper_zone,
        "ready": True,
    }


def test_the_retirement_schedule_does_nothing_in_named_mode(
    sample: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    assert retire_helpers.handler(sample("retire_helpers"), lambda_context) == {"retired": {}}
